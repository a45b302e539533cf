% rebase('layout', title=title, session=session, page=page, initial=initial)
<h1>Audit log</h1>
<p>Every state-changing call to the master, newest first: who made it (a dashboard user, an api key, or a loopback peer), from where, and its parameters with secrets redacted.</p>
<div class="overflow-auto">
<table class="striped" id="audit">
  <thead><tr><th>Time</th><th>Who</th><th>Peer</th><th>Via</th><th>Method</th><th>Params</th><th>Result</th></tr></thead>
  <tbody></tbody>
</table>
</div>
<p id="summary"></p>
