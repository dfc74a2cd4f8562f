// Chart.js on <canvas>: it draws pixels, so the page needs no inline style and the CSP can keep
// style-src 'self'. Only the pieces used are registered (tree-shaken bundle).
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Filler,
  Legend,
  LinearScale,
  LineElement,
  PointElement,
  RadarController,
  RadialLinearScale,
  Tooltip,
} from 'chart.js';
import { useEffect, useRef } from 'preact/hooks';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip, RadarController,
  RadialLinearScale, PointElement, LineElement, Filler);
Chart.defaults.font.family = '"Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif';
Chart.defaults.animation = false;

export const COLORS = ['#1d4e89', '#e07a1f', '#2a9d8f', '#b5179e', '#8d99ae', '#e63946'];

// A chart; `label` describes it for screen readers (the data is also in a table beside it).
export function ChartCanvas({ type, data, options, label, height = 260 }) {
  const canvas = useRef(null);
  const chart = useRef(null);
  useEffect(() => {
    chart.current = new Chart(canvas.current, {
      type,
      data,
      options: { responsive: true, maintainAspectRatio: false, ...options },
    });
    return () => chart.current.destroy();
  }, [type, JSON.stringify(data), JSON.stringify(options)]);
  return (
    <div class={`chart h${height}`}>
      <canvas ref={canvas} role="img" aria-label={label} />
    </div>
  );
}
