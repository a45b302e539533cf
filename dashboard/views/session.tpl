% rebase('layout', title=title, session=session, page=page, initial=initial)
<h1>Session {{session_id}}</h1>
<p id="span"></p>
<section class="grid" id="totals"></section>
<div class="grid">
  <article>
    <header>By drinker</header>
    <div class="overflow-auto"><table class="striped"><thead><tr><th>Drinker</th><th>Volume</th></tr></thead><tbody id="drinkers"></tbody></table></div>
  </article>
  <article>
    <header>Pours</header>
    <div class="overflow-auto"><table class="striped"><thead><tr><th>End</th><th>Tap</th><th>Drinker</th><th>Keg</th><th>Volume</th></tr></thead><tbody id="pours"></tbody></table></div>
  </article>
</div>
