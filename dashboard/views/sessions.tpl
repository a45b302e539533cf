% rebase('layout', title=title, session=session, page=page, initial=initial)
<h1>Drinking sessions</h1>
<p><small>Pours less than 90 minutes apart form a session.</small></p>
<article>
  <div class="overflow-auto"><table class="striped"><thead><tr><th>Session</th><th>Start</th><th>End</th><th>Pours</th><th>Volume</th><th>Drinkers</th></tr></thead><tbody id="sessions"></tbody></table></div>
</article>
