// progress.png as nnU-Net's nnUNetLogger.plot_progress_png draws it (REFERENCE §5.7): three stacked
// panels — train/val loss with pseudo Dice and its EMA on a twin right axis, epoch duration (y from
// 0), learning rate — 3000×5400 px like the 30×54 inch figure at 100 dpi. Declared as a vega-lite
// spec, rendered to SVG by vega and rasterised by resvg; no pixels are painted by hand.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { Resvg } from '@resvg/resvg-js';
import { writeFileAtomic } from '../io/atomic.js';
import type { TrainingLogLists } from '../engine/checkpoint.js';

export const PROGRESS_PNG_SIZE = { width: 3000, height: 5400 } as const;

// seaborn's colour codes, which sns.set() maps matplotlib's 'b', 'r', 'g' to.
const BLUE = '#4C72B0';
const RED = '#C44E52';
const GREEN = '#55A868';

export interface PlotOptions {
  /** Output size in pixels (default nnU-Net's 3000×5400). */
  width?: number;
  height?: number;
}

type Row = { epoch: number; value: number | null; series: string };

const finiteOrNull = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? null : v);

function rows(values: number[], series: string, epochs: number): Row[] {
  return Array.from({ length: epochs }, (_, epoch) => ({ epoch, value: finiteOrNull(values[epoch]), series }));
}

const legendAbove = { orient: 'none' as const, legendX: 0, legendY: -110, title: null, direction: 'vertical' as const };

/** The vega-lite spec of the three panels, from the logger lists (only fully logged epochs). */
export function progressSpec(log: TrainingLogLists): TopLevelSpec {
  const epochs = Math.min(log.train_losses.length, log.val_losses.length, log.mean_fg_dice.length, log.ema_fg_dice.length, log.lrs.length, log.epoch_end_timestamps.length);
  const durations = log.epoch_end_timestamps.slice(0, epochs).map((e, i) => e - log.epoch_start_timestamps[i]);
  // A single epoch is a line of zero length; show its points so the first plot is not empty.
  const mark = (extra: Record<string, unknown> = {}) => ({ type: 'line' as const, strokeWidth: 4, point: epochs === 1 ? { size: 200 } : false, ...extra });
  const x = { field: 'epoch', type: 'quantitative' as const, title: 'epoch', axis: { tickMinStep: 1 } };
  const panel = { width: 2650, height: 1520 };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    background: 'white',
    padding: { left: 60, right: 60, top: 150, bottom: 40 },
    spacing: 260,
    // Each panel keeps its own colours and legend (concat would otherwise merge the nominal scales).
    resolve: { scale: { color: 'independent', strokeDash: 'independent' }, legend: { color: 'independent', strokeDash: 'independent' } },
    config: {
      font: 'DejaVu Sans',
      view: { fill: '#EAEAF2', stroke: null },
      axis: { tickCount: 10, gridColor: 'white', gridWidth: 2, domain: false, ticks: false, labelFontSize: 30, titleFontSize: 32, titleFontWeight: 'normal', labelPadding: 12, titlePadding: 20 },
      legend: { labelFontSize: 30, symbolSize: 900, symbolStrokeWidth: 4, fillColor: '#EAEAF2', padding: 14, cornerRadius: 6, labelLimit: 600 },
    },
    vconcat: [
      {
        ...panel,
        layer: [
          {
            data: { values: [...rows(log.train_losses, 'loss_tr', epochs), ...rows(log.val_losses, 'loss_val', epochs)] },
            mark: mark(),
            encoding: {
              x,
              y: { field: 'value', type: 'quantitative', title: 'loss', scale: { zero: false } },
              color: { field: 'series', type: 'nominal', scale: { domain: ['loss_tr', 'loss_val'], range: [BLUE, RED] }, legend: legendAbove },
            },
          },
          {
            data: { values: [...rows(log.mean_fg_dice, 'pseudo dice', epochs), ...rows(log.ema_fg_dice, 'pseudo dice (mov. avg.)', epochs)] },
            mark: mark(),
            encoding: {
              x,
              y: { field: 'value', type: 'quantitative', title: 'pseudo dice', scale: { zero: false }, axis: { orient: 'right', grid: false } },
              color: { field: 'series', type: 'nominal', scale: { domain: ['pseudo dice', 'pseudo dice (mov. avg.)'], range: [GREEN, GREEN] }, legend: { ...legendAbove, legendX: 530 } },
              // Same field and domain as color: vega-lite merges both into one legend with dashed symbols.
              strokeDash: { field: 'series', type: 'nominal', scale: { domain: ['pseudo dice', 'pseudo dice (mov. avg.)'], range: [[3, 6], [1, 0]] }, legend: { ...legendAbove, legendX: 530 } },
            },
          },
        ],
        resolve: { scale: { y: 'independent', color: 'independent', strokeDash: 'independent' } },
      },
      {
        ...panel,
        data: { values: durations.map((d, epoch) => ({ epoch, value: finiteOrNull(d), series: 'epoch duration' })) },
        mark: mark(),
        encoding: {
          x,
          y: { field: 'value', type: 'quantitative', title: 'time [s]', scale: { zero: true } },
          color: { field: 'series', type: 'nominal', scale: { domain: ['epoch duration'], range: [BLUE] }, legend: legendAbove },
        },
      },
      {
        ...panel,
        data: { values: rows(log.lrs, 'learning rate', epochs) },
        mark: mark(),
        encoding: {
          x,
          y: { field: 'value', type: 'quantitative', title: 'learning rate', scale: { zero: false } },
          color: { field: 'series', type: 'nominal', scale: { domain: ['learning rate'], range: [BLUE] }, legend: legendAbove },
        },
      },
    ],
  } as TopLevelSpec;
}

/** The spec rendered to SVG, its root resized to exactly width×height (content scaled to fit). */
export async function progressSvg(log: TrainingLogLists, o: PlotOptions = {}): Promise<string> {
  const width = o.width ?? PROGRESS_PNG_SIZE.width;
  const height = o.height ?? PROGRESS_PNG_SIZE.height;
  // vega-lite's warnings (e.g. about empty data) are not the user's business; keep stderr clean.
  const spec = compile(progressSpec(log), { logger: vega.logger(vega.None) }).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'none', logLevel: vega.None });
  try {
    const svg = await view.toSVG();
    // vega sizes the SVG to its content; pin the root to the figure size nnU-Net writes.
    return svg.replace(/^<svg([^>]*?) width="[\d.]+" height="[\d.]+"/, `<svg$1 width="${width}" height="${height}" preserveAspectRatio="xMidYMin meet"`);
  } finally {
    view.finalize();
  }
}

/** PNG bytes of the progress plot. */
export async function renderProgressPng(log: TrainingLogLists, o: PlotOptions = {}): Promise<Uint8Array> {
  const svg = await progressSvg(log, o);
  const resvg = new Resvg(svg, { background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } });
  return resvg.render().asPng();
}

/** Writes `<folder>/progress.png` (atomically; a reader never sees half an image). */
export async function writeProgressPng(file: string, log: TrainingLogLists, o: PlotOptions = {}): Promise<void> {
  await writeFileAtomic(file, await renderProgressPng(log, o));
}
