// Server reflection (grpc.reflection.v1 and v1alpha through @grpc/reflection), so grpcurl, buf curl
// and Postman discover the API without .proto files. protobufjs's descriptors need two repairs
// before strict clients (Go's protodesc, which buf and grpcurl use) accept them: a file must
// declare the files it imports (protobufjs leaves `dependency` empty, so google.protobuf.Timestamp
// would be unresolvable), and a map's entry message must be named `<Field>Entry`.
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import descriptor from 'protobufjs/ext/descriptor/index.js';

interface FieldDescriptor {
  name: string;
  typeName?: string;
}

interface MessageDescriptor {
  name: string;
  field?: FieldDescriptor[];
  nestedType?: MessageDescriptor[];
  enumType?: { name: string }[];
  options?: { mapEntry?: boolean };
}

interface FileDescriptor {
  name: string;
  package?: string;
  dependency?: string[];
  messageType?: MessageDescriptor[];
  enumType?: { name: string }[];
  service?: { name: string; method?: { inputType?: string; outputType?: string }[] }[];
}

interface DescriptorCodec {
  decode(bytes: Uint8Array): unknown;
  toObject(message: unknown): unknown;
  fromObject(object: unknown): unknown;
  encode(message: unknown): { finish(): Uint8Array };
}

const FileDescriptorProto = (descriptor as unknown as { FileDescriptorProto: DescriptorCodec }).FileDescriptorProto;

/** Every fully qualified type name a file declares, for finding which file another one imports. */
function declaredTypes(file: FileDescriptor, into: Map<string, string>): void {
  const visit = (scope: string, messages: MessageDescriptor[] = [], enums: { name: string }[] = []) => {
    for (const e of enums) into.set(`${scope}.${e.name}`, file.name);
    for (const m of messages) {
      into.set(`${scope}.${m.name}`, file.name);
      visit(`${scope}.${m.name}`, m.nestedType, m.enumType);
    }
  };
  visit(file.package ? `.${file.package}` : '', file.messageType, file.enumType);
}

/** Type names as protobuf resolves them: relative to the enclosing scopes, innermost first. */
function candidates(ref: string, scope: string): string[] {
  if (ref.startsWith('.')) return [ref];
  const parts = scope.split('.').filter(Boolean);
  const out: string[] = [];
  for (let n = parts.length; n >= 0; n--) out.push(`.${[...parts.slice(0, n), ref].join('.')}`);
  return out;
}

/** Renames map entry messages to `<Field>Entry` (and the fields using them); collects referenced names with their scope. */
function repairMessages(messages: MessageDescriptor[] = [], scope: string, references: Set<string>): void {
  for (const m of messages) {
    for (const nested of m.nestedType ?? []) {
      if (!nested.options?.mapEntry || nested.name.endsWith('Entry')) continue;
      const old = nested.name;
      nested.name = `${old}Entry`;
      for (const f of m.field ?? []) {
        if (f.typeName === old || f.typeName?.endsWith(`.${m.name}.${old}`)) f.typeName = f.typeName.slice(0, -old.length) + nested.name;
      }
    }
    for (const f of m.field ?? []) if (f.typeName) for (const c of candidates(f.typeName, `${scope}.${m.name}`)) references.add(c);
    repairMessages(m.nestedType, `${scope}.${m.name}`, references);
  }
}

/** A package definition holding only the repaired file descriptors: all @grpc/reflection reads. */
export function reflectionDefinition(definitions: protoLoader.PackageDefinition[]): protoLoader.PackageDefinition {
  const files = new Map<string, FileDescriptor>();
  for (const definition of definitions) {
    for (const value of Object.values(definition)) {
      for (const bytes of (value as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos ?? []) {
        const file = FileDescriptorProto.toObject(FileDescriptorProto.decode(bytes)) as FileDescriptor;
        if (!files.has(file.name)) files.set(file.name, file);
      }
    }
  }
  const owners = new Map<string, string>();
  for (const file of files.values()) declaredTypes(file, owners);
  const result: Record<string, { fileDescriptorProtos: Buffer[] }> = {};
  for (const file of files.values()) {
    const references = new Set<string>();
    const scope = file.package ? `.${file.package}` : '';
    repairMessages(file.messageType, scope, references);
    for (const s of file.service ?? []) for (const m of s.method ?? []) for (const t of [m.inputType, m.outputType]) if (t) for (const c of candidates(t, scope)) references.add(c);
    const dependencies = new Set(file.dependency ?? []);
    for (const ref of references) {
      const owner = owners.get(ref);
      if (owner && owner !== file.name) dependencies.add(owner);
    }
    file.dependency = [...dependencies].sort();
    const bytes = Buffer.from(FileDescriptorProto.encode(FileDescriptorProto.fromObject(file)).finish());
    result[file.name] = { fileDescriptorProtos: [bytes] };
  }
  return result as unknown as protoLoader.PackageDefinition;
}

export function reflectionService(definitions: protoLoader.PackageDefinition[]): ReflectionService {
  return new ReflectionService(reflectionDefinition(definitions));
}
