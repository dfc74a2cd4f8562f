// A schematic of Inner Mongolia's 12 leagues (盟市), west to east, roughly where they lie: each
// tile shows the clusters whose core region it is.
import { joinList, L, listSeparator, localName } from '../i18n.js';

const TILES = [
  ['152900', 10, 216], ['150800', 120, 182], ['150300', 120, 250], ['150200', 230, 182],
  ['150600', 230, 250], ['150100', 340, 214], ['150900', 450, 198], ['152500', 560, 130],
  ['150400', 630, 214], ['150500', 740, 146], ['152200', 720, 78], ['150700', 790, 10],
];
const W = 100;
const H = 58;

export function LeagueMap({ regions, clusters }) {
  const byRegion = {};
  for (const c of clusters) for (const r of c.coreRegions || []) (byRegion[r] = byRegion[r] || []).push(c);
  const max = Math.max(1, ...Object.values(byRegion).map((l) => l.length));
  return (
    <figure class="league-map">
      <svg viewBox="0 0 900 320" role="img" aria-labelledby="league-map-title">
        <title id="league-map-title">{L('13 个集群在 12 个盟市的分布（核心区）', 'Where the 13 clusters are across the 12 leagues (core regions)')}</title>
        {TILES.map(([code, x, y]) => {
          const region = regions.find((r) => r.code === code);
          const list = byRegion[code] || [];
          const level = Math.round((list.length / max) * 4);
          return (
            <g key={code} class={`tile level${level}`} data-region={code}>
              <title>{`${region ? localName(region) : code}: ${joinList(list.map(localName)) || '—'}`}</title>
              <rect x={x} y={y} width={W} height={H} rx="8" />
              <text x={x + W / 2} y={y + 24} text-anchor="middle" class="tile-name">
                {region ? localName(region) : code}
              </text>
              <text x={x + W / 2} y={y + 45} text-anchor="middle" class="tile-count">
                {list.length} {L('个集群', list.length === 1 ? 'cluster' : 'clusters')}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption>
        <ul class="league-list">
          {TILES.map(([code]) => {
            const region = regions.find((r) => r.code === code);
            const list = byRegion[code] || [];
            return (
              <li key={code}>
                <strong>{region ? localName(region) : code}</strong>{' '}
                {list.length === 0
                  ? '—'
                  : list.map((c, i) => (
                      <span key={c.name}>
                        {i > 0 && listSeparator()}
                        <a href={`/${c.name}`}>{localName(c)}</a>
                      </span>
                    ))}
              </li>
            );
          })}
        </ul>
      </figcaption>
    </figure>
  );
}
