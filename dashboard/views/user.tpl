% rebase('layout', title=title, session=session, page=page, initial=initial)
<h1>{{username}}</h1>
<section class="grid" id="totals"></section>
<article>
  <header>Volume by weekday</header>
  <div class="chart" id="by-weekday"></div>
</article>
<div class="grid">
  <article>
    <header>Sessions</header>
    <div class="overflow-auto"><table class="striped"><thead><tr><th>Session</th><th>Start</th><th>Pours</th><th>Volume</th><th>With</th></tr></thead><tbody id="sessions"></tbody></table></div>
  </article>
  <article>
    <header>Pours</header>
    <div class="overflow-auto"><table class="striped"><thead><tr><th>End</th><th>Tap</th><th>Keg</th><th>Volume</th></tr></thead><tbody id="pours"></tbody></table></div>
  </article>
</div>
