/** The dashboard's one style sheet, served as /ui/static/ui.css (no inline styles: the CSP forbids them). */
export const STYLE = `
:root { color-scheme: light dark; --bad: #c62828; --ok: #2e7d32; --wait: #b26a00; --hold: #6a1b9a; --boot: #1565c0; --muted: #777; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; }
header { display: flex; align-items: center; justify-content: space-between; padding: .5rem 1rem; border-bottom: 1px solid #8884; }
header .brand { font-weight: bold; font-size: 1.1rem; text-decoration: none; color: inherit; }
header nav { display: flex; gap: 1rem; align-items: center; }
main { padding: 1rem; }
form.inline { display: inline; }
.login { display: flex; flex-direction: column; gap: .75rem; max-width: 22rem; }
.login input { width: 100%; }
.error { color: var(--bad); }
.hint, small, .shown, .empty { color: var(--muted); }
.counts { display: flex; flex-wrap: wrap; gap: .75rem; list-style: none; padding: 0; margin: 0 0 1rem; }
.counts li { border: 1px solid #8884; border-radius: 6px; padding: .5rem .9rem; }
.counts b { font-size: 1.4rem; margin-right: .25rem; }
.counts a { color: inherit; text-decoration: none; }
.counts .booting b { color: var(--boot); } .counts .waiting b { color: var(--wait); } .counts .held b { color: var(--hold); }
.counts .failed b { color: var(--bad); } .counts .succeeded b { color: var(--ok); }
.filters { display: flex; gap: 1rem; margin-bottom: 1rem; }
.filters input[type=search] { width: 22rem; }
table.fleet { border-collapse: collapse; width: 100%; }
table.fleet th, table.fleet td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #8883; vertical-align: top; }
table.fleet td.num { text-align: right; }
table.fleet td.detail { max-width: 32rem; overflow-wrap: anywhere; }
.stage { display: inline-block; padding: 0 .4rem; border-radius: 4px; border: 1px solid currentColor; font-size: .85rem; }
.stage-booting .stage, .stage.stage-booting { color: var(--boot); }
.stage-waiting .stage, .stage.stage-waiting { color: var(--wait); }
.stage-held .stage, .stage.stage-held { color: var(--hold); }
.stage-failed .stage, .stage.stage-failed { color: var(--bad); }
.stage-succeeded .stage, .stage.stage-succeeded, .stage-running .stage, .stage.stage-running { color: var(--ok); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
.next-boot form { display: flex; flex-wrap: wrap; gap: .75rem; align-items: end; }
.next-boot .actions { display: flex; gap: .5rem; }
pre { overflow-x: auto; padding: .5rem; border: 1px solid #8884; }
ol.timeline { list-style: none; padding-left: 0; margin: 0; }
ol.timeline li { padding: .15rem 0; overflow-wrap: anywhere; }
ol.timeline li.bad { color: var(--bad); }
ol.timeline li.unverified { color: var(--muted); font-style: italic; }
ol.timeline .kind { display: inline-block; min-width: 6rem; font-weight: 600; }
details.problems { border: 1px solid var(--bad); border-radius: 6px; padding: .5rem .9rem; margin-bottom: 1rem; }
details.problems li.warning { color: var(--wait); }
form.assign { display: flex; gap: .3rem; }
.download { display: flex; flex-wrap: wrap; gap: .1rem .5rem; align-items: center; font-size: .85rem; }
.download .name { color: var(--muted); overflow-wrap: anywhere; }
.bar { display: inline-flex; gap: .4rem; align-items: center; }
.bar progress { width: 10rem; height: .8rem; }
.bar.bad { color: var(--bad); }
.bar .speed { color: var(--boot); font-variant-numeric: tabular-nums; }
td.path { overflow-wrap: anywhere; max-width: 40rem; }
.counts .budget progress { width: 8rem; vertical-align: middle; }
figure.chart { margin: 0 0 1rem; max-width: 600px; }
figure.chart figcaption { font-weight: 600; margin-bottom: .2rem; }
figure.chart figcaption small { font-weight: normal; }
figure.chart svg { display: block; width: 100%; height: auto; border-bottom: 1px solid #8886; }
figure.chart rect { fill: var(--boot); }
figure.chart[data-chart=throughput] rect { fill: var(--ok); }
figure.chart .axis { stroke: #8886; }
.chart-axis { display: flex; justify-content: space-between; color: var(--muted); font-size: .75rem; }
td.sent { max-width: 24rem; overflow-wrap: anywhere; }
td.sent span { display: block; }
section.boot { border-left: 3px solid #8886; padding-left: .75rem; margin-bottom: 1rem; }
`;
