% rebase('layout', title=title, session=session, page=page, initial=initial)
<h1>Overview</h1>
<section class="cards">
  <article><header>Clients online</header><div id="clients-online" class="big">–</div><ul id="clients-by-role" class="plain"></ul></article>
  <article><header>Jobs</header><ul id="jobs-by-status" class="plain"></ul></article>
  <article><header>Master <small id="master-listen"></small></header><div id="master-role" class="big">–</div><small id="master-holder"></small></article>
  <article><header>Tasks running</header><div id="tasks-running" class="big">–</div><small id="tasks-completed"></small></article>
  <article id="last-rendered"><header>Last rendered</header><figure class="preview" hidden><a><img alt="the newest frame"></a><figcaption></figcaption></figure><small class="muted">no previews yet</small></article>
</section>
<article>
  <header>Throughput <small>(tasks completed per minute)</small></header>
  <div id="throughput-chart" class="chart"></div>
</article>
<article>
  <header>Recent events</header>
  <div class="overflow-auto"><table class="striped"><thead><tr><th>Time</th><th>Topic</th><th>What</th></tr></thead><tbody id="events"></tbody></table></div>
</article>
