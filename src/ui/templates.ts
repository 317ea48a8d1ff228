/**
 * The dashboard's pages as Liquid templates, kept in the module (so the compiled server needs no
 * template files beside it). LiquidJS escapes every `{{ }}` output (`outputEscape: 'escape'`):
 * a device's hostname, serial or report message is text wherever it appears. `raw` is used only
 * for HTML rendered by these same templates.
 */
import { Liquid } from 'liquidjs';

/** One download's progress bar (a native <progress>: no inline style, which the CSP forbids). */
const bar = `<span class="bar{% if bar.tone != "" %} {{ bar.tone }}{% endif %}" data-phase="{{ bar.phase }}">{% if bar.max > 0 %}<progress value="{{ bar.value }}" max="{{ bar.max }}">{{ bar.text }}</progress>{% else %}<progress>{{ bar.text }}</progress>{% endif %}
<span class="bar-text">{{ bar.text }}</span>{% if bar.speed != "" %} <span class="speed">{{ bar.speed }}</span>{% endif %}</span>`;

/** A per-minute bar chart over the last hour (numbers only), drawn as inline SVG. */
const chart = `<figure class="chart" data-chart="{{ name }}"><figcaption>{{ caption }} <small>last hour: {{ chart.totalText }}, at most {{ chart.maxText }} a minute</small></figcaption>
<svg viewBox="0 0 {{ chart.width }} {{ chart.height }}" width="{{ chart.width }}" height="{{ chart.height }}" role="img" aria-label="{{ caption }}, last hour: {{ chart.totalText }}">
<line class="axis" x1="0" y1="{{ chart.height }}" x2="{{ chart.width }}" y2="{{ chart.height }}"></line>
{% for bar in chart.bars %}{% if bar.height > 0 %}<rect x="{{ bar.x }}" y="{{ bar.y }}" width="{{ bar.width }}" height="{{ bar.height }}"><title>{{ bar.title }}</title></rect>{% endif %}{% endfor %}
</svg>
<div class="chart-axis"><span>60 min ago</span>{% if chart.empty %}<span class="empty">nothing yet</span>{% endif %}<span>now</span></div></figure>`;

const layout = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}'>
<title>{{ title }} — bootdepot</title>
<link rel="stylesheet" href="/ui/static/ui.css">
<script src="/ui/static/htmx.min.js"></script>
<script src="/ui/static/sse.js"></script>
</head>
<body>
<header>
<a class="brand" href="/ui/">bootdepot</a>
{% if signedIn %}<nav><a href="/ui/">Fleet</a> <a href="/ui/mirror">Mirror</a> <a href="/ui/problems">Problems</a>
<form method="post" action="/ui/logout" class="inline"><input type="hidden" name="_csrf" value="{{ csrf }}"><button type="submit">Log out</button></form></nav>{% endif %}
</header>
<main>
{{ body | raw }}
</main>
</body>
</html>
`;

const login = `<h1>Log in</h1>
<form method="post" action="/ui/login" class="login">
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
<input type="hidden" name="next" value="{{ next }}">
<label>Admin token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit">Log in</button>
</form>
<p class="hint">The token is the server's <code>admin.token</code> (BOOTDEPOT_ADMIN_TOKEN, --admin-token).</p>
`;

const fleetFragment = `<ul class="counts">
<li class="booting"><a href="/ui/?stage=booting"><b>{{ counts.booting }}</b> booting</a></li>
<li class="waiting"><a href="/ui/?stage=waiting"><b>{{ counts.waiting }}</b> waiting</a></li>
<li class="held"><a href="/ui/?stage=held"><b>{{ counts.held }}</b> held</a></li>
<li class="failed"><a href="/ui/?stage=failed"><b>{{ counts.failedLastHour }}</b> failed</a> <small>last hour</small></li>
<li class="succeeded"><a href="/ui/?stage=succeeded"><b>{{ counts.doneLastHour }}</b> done</a> <small>last hour</small></li>
<li class="boots"><b>{{ boots.totalText }}</b> boots <small>last hour</small></li>
<li><b>{{ counts.total }}</b> devices</li>
</ul>
{% render 'chart', chart: boots, name: 'boots', caption: 'Boots per minute' %}
<p class="shown">{{ rows.size }} shown{% if truncated %} (the first {{ limit }} devices only){% endif %}</p>
<table class="fleet">
<thead><tr><th>MAC</th><th>Hostname</th><th>Stage</th><th>Detail</th><th>Profile</th><th>Group</th><th>Next boot</th><th>Last seen</th><th>Boots</th>{% if assign %}<th>Sent</th><th>Assign</th>{% endif %}</tr></thead>
<tbody>
{% for row in rows %}<tr class="stage-{{ row.stage }}" data-device="{{ row.id }}">
<td><a href="/ui/devices/{{ row.id | url_encode }}">{{ row.id }}</a></td>
<td class="hostname">{{ row.hostname }}</td>
<td><span class="stage">{{ row.stage }}</span></td>
<td class="detail">{{ row.detail }}{% for bar in row.downloads %}<div class="download"><span class="name">{{ bar.name }}</span> {% render 'bar', bar: bar %}</div>{% endfor %}</td>
<td>{{ row.profile }}</td>
<td>{{ row.group }}</td>
<td>{{ row.nextBoot }}</td>
<td><time datetime="{{ row.lastSeen }}" title="{{ row.lastSeen }}">{{ row.lastSeenAgo }}</time></td>
<td class="num">{{ row.boots }}</td>
{% if assign %}<td class="sent">{% for pair in row.sent %}<span><small>{{ pair.field }}</small> {{ pair.value }}</span>{% endfor %}</td><td><form method="post" action="/ui/devices/{{ row.id | url_encode }}/next-boot" class="assign">
<input type="hidden" name="_csrf" value="{{ assign.csrf }}"><input type="hidden" name="action" value="profile"><input type="hidden" name="back" value="{{ assign.back }}">
<input type="hidden" name="reason" value="assigned from the dashboard">
<select name="profile" id="assign-{{ row.id | replace: ':', '-' }}" hx-preserve="true" required><option value="">profile…</option>{% for profile in assign.profiles %}<option value="{{ profile }}">{{ profile }}</option>{% endfor %}</select>
<button type="submit">Assign</button></form></td>{% endif %}
</tr>
{% else %}<tr><td colspan="11" class="empty">No devices{% if filtered %} match{% else %} yet: a machine appears when it asks for /ipxe{% endif %}.</td></tr>
{% endfor %}</tbody>
</table>
`;

const fleet = `{% if problems.size > 0 or elsewhere.size > 0 %}<details class="problems"{% if errors > 0 or elsewhere.size > 0 %} open{% endif %}>
<summary>{{ errors }} data problem{% if errors != 1 %}s{% endif %}{% if warnings > 0 %}, {{ warnings }} warning{% if warnings != 1 %}s{% endif %}{% endif %} (what <code>bootdepot check</code> says){% if elsewhere.size > 0 %}; {{ elsewhere.size }} with the store or upstreams{% endif %} — <a href="/ui/problems">all problems</a></summary>
<ul>{% for problem in problems %}<li class="{% if problem.warning %}warning{% else %}error{% endif %}">{{ problem.text }}</li>{% endfor %}{% for line in elsewhere %}<li class="error">{{ line }}</li>{% endfor %}</ul>
</details>{% endif %}
<section hx-ext="sse" sse-connect="/ui/events">
<form id="filters" class="filters" method="get" action="/ui/" hx-get="/ui/fleet" hx-target="#fleet" hx-trigger="input delay:300ms, change">
<label>Stage <select name="stage" id="stage">
<option value="">all</option>
{% for choice in stageChoices %}<option value="{{ choice }}"{% if choice == stage %} selected{% endif %}>{{ choice }}</option>{% endfor %}
</select></label>
<label>Search <input type="search" name="q" id="q" value="{{ q }}" placeholder="MAC, hostname, serial, profile"></label>
<noscript><button type="submit">Filter</button></noscript>
</form>
<div id="fleet" hx-get="/ui/fleet" hx-include="#filters" hx-trigger="sse:changed">
{{ fragment | raw }}
</div>
</section>
`;

const deviceFragment = `<dl class="status">
<dt>Stage</dt><dd><span class="stage stage-{{ row.stage }}">{{ row.stage }}</span> {{ row.detail }}</dd>
{% if row.downloads.size > 0 %}<dt>Downloads</dt><dd class="downloads">{% for bar in row.downloads %}<div class="download"><span class="name">{{ bar.name }}</span> {% render 'bar', bar: bar %}</div>{% endfor %}</dd>{% endif %}
<dt>Next boot</dt><dd>{% if device.nextBoot %}<b>{{ row.nextBoot }}</b> — {{ device.nextBoot.reason }} <small>(set {{ device.nextBoot.setAt }})</small>{% else %}normal matching{% endif %}</dd>
<dt>Decision now</dt><dd class="decision"><b>{{ decision.action }}</b>{% if decision.profile %} {{ decision.profile }}{% endif %} — {{ decision.reason }}{% if decision.problem %}<br><span class="error">the machine would wait: {{ decision.problem }}</span>{% endif %}
{% if decision.labelsFrom %}<br><small>labels from {{ decision.labelsFrom }}</small>{% endif %}</dd>
</dl>
<details><summary>The script it would get now</summary><pre>{{ decision.body }}</pre></details>
<h2>Boots</h2>
{% for entry in timeline %}<section class="boot">
<h3>{% if entry.title != "" %}{{ entry.title }}{% else %}events{% endif %} <small>{{ entry.at }}</small></h3>
<ol class="timeline">
{% for line in entry.lines %}<li class="{{ line.tone }}"><time datetime="{{ line.at }}">{{ line.at | slice: 11, 12 }}</time> <span class="kind">{{ line.kind }}</span> {{ line.text }}{% if line.bar %} {% render 'bar', bar: line.bar %}{% endif %}</li>
{% endfor %}</ol>
</section>
{% else %}<p class="empty">No events recorded.</p>
{% endfor %}
`;

const device = `<h1>{{ device.id }}{% if device.identity.hostname %} <small>{{ device.identity.hostname }}</small>{% endif %}</h1>
<section class="identity"><h2>Identity</h2><dl>
{% for field in identity %}<dt>{{ field[0] }}</dt><dd>{{ field[1] }}</dd>{% endfor %}
<dt>first seen</dt><dd>{{ device.firstSeen }}</dd>
<dt>last seen</dt><dd>{{ device.lastSeen }}</dd>
<dt>boots</dt><dd>{{ device.bootCount }}</dd>
</dl></section>
<section class="next-boot"><h2>Set the next boot</h2>
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
<form method="post" action="/ui/devices/{{ device.id | url_encode }}/next-boot">
<input type="hidden" name="_csrf" value="{{ csrf }}">
<label>Profile <select name="profile"><option value="">—</option>{% for profile in profiles %}<option value="{{ profile }}">{{ profile }}</option>{% endfor %}</select></label>
<label>Reason <input type="text" name="reason" maxlength="500" placeholder="why (kept with the change)"></label>
<div class="actions">
<button type="submit" name="action" value="hold">Hold</button>
<button type="submit" name="action" value="local">Local disk</button>
<button type="submit" name="action" value="once">Once with profile</button>
<button type="submit" name="action" value="profile">Always profile</button>
<button type="submit" name="action" value="clear">Clear</button>
</div>
</form></section>
<section hx-ext="sse" sse-connect="/ui/events?device={{ device.id | url_encode }}">
<h2>Now</h2>
<div id="device-live" hx-get="/ui/devices/{{ device.id | url_encode }}/live" hx-trigger="sse:changed">
{{ fragment | raw }}
</div>
</section>
`;

const mirrorFragment = `<ul class="counts">
<li class="budget"><b>{{ view.budget.percent }} %</b> of the disk budget <progress value="{{ view.budget.value }}" max="{{ view.budget.limit }}">{{ view.budget.percent }} %</progress> <small>{{ view.budget.used }} of {{ view.budget.max }}, {{ view.budget.files }} files</small></li>
<li class="booting"><b>{{ view.fills.size }}</b> filling{% if view.queued > 0 %} <small>{{ view.queued }} queued</small>{% endif %}</li>
<li class="failed"><b>{{ view.failures.size }}</b> recent failures</li>
</ul>
{% render 'chart', chart: throughput, name: 'throughput', caption: 'Mirror throughput (bytes from upstreams) per minute' %}
<p class="shown">{% for counter in view.counters %}{{ counter.label }} <b>{{ counter.value }}</b>{% unless forloop.last %} · {% endunless %}{% endfor %}</p>
<h2>Fills in progress</h2>
{% if view.fills.size > 0 %}<table class="fleet fills">
<thead><tr><th>File</th><th>Progress</th><th>Started</th></tr></thead>
<tbody>{% for fill in view.fills %}<tr data-fill="{{ fill.name }}"><td class="path">{{ fill.name }}</td><td>{% render 'bar', bar: fill.bar %}</td><td><time datetime="{{ fill.started }}" title="{{ fill.started }}">{{ fill.startedAgo }}</time></td></tr>
{% endfor %}</tbody></table>{% else %}<p class="empty">None: every file asked for lately is cached.</p>{% endif %}
<h2>Recent failures</h2>
{% if view.failures.size > 0 %}<table class="fleet failures">
<thead><tr><th>File</th><th>Error</th><th>Upstream</th><th>When</th></tr></thead>
<tbody>{% for failure in view.failures %}<tr><td class="path">{{ failure.name }}</td><td class="error">{{ failure.error }}</td><td class="path">{{ failure.upstream }}</td><td><time datetime="{{ failure.at }}" title="{{ failure.at }}">{{ failure.ago }}</time></td></tr>
{% endfor %}</tbody></table>{% else %}<p class="empty">None.</p>{% endif %}
<h2>Cached files</h2>
<p class="shown">{{ view.files.size }} shown of {{ view.filesMatching }}{% if q != "" %} matching{% endif %}, most recently used first</p>
<table class="fleet files">
<thead><tr><th>File</th><th class="num">Size</th><th class="num">Age</th><th class="num">Uses</th><th>Pinned</th><th>Digest</th><th class="num">Readers</th></tr></thead>
<tbody>{% for file in view.files %}<tr data-file="{{ file.mirror }}/{{ file.path }}"><td class="path"><b>{{ file.mirror }}</b>/{{ file.path }}</td><td class="num">{{ file.size }}</td><td class="num">{{ file.age }}</td><td class="num">{{ file.uses }}</td><td>{% if file.pinned %}pinned{% endif %}</td><td>{% if file.verified %}verified{% endif %}</td><td class="num">{{ file.readers }}</td></tr>
{% else %}<tr><td colspan="7" class="empty">No files{% if q != "" %} match{% else %} cached yet{% endif %}.</td></tr>
{% endfor %}</tbody></table>
`;

const mirror = `<h1>Mirror</h1>
{% if off %}<p class="empty">The pull-through mirror is off.</p>{% else %}
<details class="mirrors"><summary>{{ mirrors.size }} mirror{% if mirrors.size != 1 %}s{% endif %} configured</summary><ul>{% for m in mirrors %}<li><code>/mirror/{{ m.name }}/</code> from {{ m.url }}</li>{% endfor %}</ul></details>
<form id="mirror-filters" class="filters" method="get" action="/ui/mirror" hx-get="/ui/mirror/live" hx-target="#mirror" hx-trigger="input delay:300ms">
<label>Search <input type="search" name="q" id="mirror-q" value="{{ q }}" placeholder="mirror or path"></label>
<noscript><button type="submit">Filter</button></noscript>
</form>
<div id="mirror" hx-get="/ui/mirror/live" hx-include="#mirror-filters" hx-trigger="every 2s">
{{ fragment | raw }}
</div>{% endif %}
`;

const problems = `<h1>Problems</h1>
{% if view.total == 0 and view.warnings == 0 %}<p class="empty">None: the data loads, the device store answers, no upstream failed lately.</p>{% endif %}
<section class="problems-data"><h2>Data <small>what <code>bootdepot check</code> says</small></h2>
{% if view.data.size > 0 %}<ul>{% for problem in view.data %}<li class="{% if problem.warning %}warning{% else %}error{% endif %}">{{ problem.text }}</li>{% endfor %}</ul>{% else %}<p class="empty">No problems in the data files.</p>{% endif %}</section>
<section class="problems-store"><h2>Device store</h2>
{% if view.store.size > 0 %}<ul>{% for line in view.store %}<li class="error">{{ line }}</li>{% endfor %}</ul>{% else %}<p class="empty">It answers.</p>{% endif %}</section>
<section class="problems-upstreams"><h2>Upstreams <small>failed mirror fills the mirror remembers</small></h2>
{% if view.upstreams.size > 0 %}<table class="fleet"><thead><tr><th>Upstream</th><th class="num">Files</th><th>Latest</th><th>When</th></tr></thead><tbody>
{% for up in view.upstreams %}<tr><td class="path">{{ up.upstream }}</td><td class="num">{{ up.files }}</td><td class="error path">{{ up.latest }}</td><td><time datetime="{{ up.at }}" title="{{ up.at }}">{{ up.ago }}</time></td></tr>
{% endfor %}</tbody></table>{% else %}<p class="empty">No upstream failed lately.</p>{% endif %}</section>
`;

const notFound = `<h1>{{ heading }}</h1><p>{{ message }}</p><p><a href="/ui/">Back to the fleet</a></p>
`;

export type TemplateName = 'bar' | 'chart' | 'problems' | 'mirror' | 'mirror-fragment' | 'layout' | 'login' | 'fleet' | 'fleet-fragment' | 'device' | 'device-fragment' | 'message';

const SOURCES: Record<TemplateName, string> = { bar, chart, problems, mirror, 'mirror-fragment': mirrorFragment, layout, login, fleet, 'fleet-fragment': fleetFragment, device, 'device-fragment': deviceFragment, message: notFound };

export interface Templates {
  render(name: TemplateName, data: Record<string, unknown>): Promise<string>;
  /** A whole page: `name` inside the layout. */
  page(name: TemplateName, data: Record<string, unknown>): Promise<string>;
}

export function createTemplates(): Templates {
  const liquid = new Liquid({ outputEscape: 'escape', strictFilters: true, jsTruthy: true, templates: SOURCES, cache: true });
  const parsed = new Map(Object.entries(SOURCES).map(([name, text]) => [name, liquid.parse(text, name)]));
  const render = async (name: TemplateName, data: Record<string, unknown>) => String(await liquid.render(parsed.get(name) ?? [], data));
  return {
    render,
    page: async (name, data) => render('layout', { ...data, body: await render(name, data) }),
  };
}
