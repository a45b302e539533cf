% rebase('layout', title=title, session=session, page=page, initial=initial)
<h1 id="keg-title">{{keg['beverage']}}</h1>
<section class="grid" id="keg-facts"></section>
<div class="grid">
  <article>
    <header>Volume by weekday</header>
    <div class="chart" id="by-weekday"></div>
  </article>
  <article>
    <header>Volume by drinker</header>
    <div class="chart" id="by-drinker"></div>
  </article>
</div>
<article id="temperature-card">
  <header>Temperature at the tap</header>
  <div class="chart" id="temperature"></div>
  <p id="no-temperature" class="muted" hidden>No sensor placed at this tap.</p>
</article>
<article>
  <header>Pours</header>
  <div class="overflow-auto"><table class="striped"><thead><tr><th>End</th><th>Who</th><th>Volume</th></tr></thead><tbody id="pours"></tbody></table></div>
</article>
