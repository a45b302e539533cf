% rebase('layout', title=title, session=session, page=page, initial=initial)
<h1>Webhooks</h1>
<p>Farm events POSTed as JSON (<code>{event, time, data}</code>) to these URLs, signed with <code>X-Farmhand-Signature: sha256=…</code> when a secret is set, retried with backoff for a day. See docs/webhooks.md.</p>
<article>
  <header>New webhook</header>
  <form id="webhook-create">
    <div class="grid">
      <label>URL <input name="url" type="url" required maxlength="2000" placeholder="https://hooks.example.com/farm"></label>
      <label>Secret (optional) <input name="secret" type="password" autocomplete="off" maxlength="200"></label>
    </div>
    <fieldset id="webhook-events">
      <legend>Events</legend>
% for event in events:
      <label><input type="checkbox" name="events" value="{{event}}"{{' checked' if event in ('job.completed', 'job.failed') else ''}}> {{event}}</label>
% end
    </fieldset>
    <button type="submit">Create webhook</button>
  </form>
</article>
<div class="overflow-auto">
<table class="striped" id="webhooks">
  <thead><tr><th>ID</th><th>URL</th><th>Events</th><th>Signed</th><th>Delivered</th><th>Failed</th><th>Dropped</th><th>Queued</th><th>Last status</th><th>Latency</th><th>Last error</th><th></th></tr></thead>
  <tbody></tbody>
</table>
</div>
<h2>Delivery log</h2>
<div class="overflow-auto">
<table class="striped" id="deliveries">
  <thead><tr><th>Webhook</th><th>Time</th><th>Event</th><th>State</th><th>Attempts</th><th>Status</th><th>Latency</th><th>Error</th><th>Next try</th></tr></thead>
  <tbody></tbody>
</table>
</div>
