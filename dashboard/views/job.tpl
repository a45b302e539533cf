% rebase('layout', title=title, session=session, page=page, initial=initial)
<hgroup>
  <h1>Job {{job['id']}}: <span id="job-name">{{job['name']}}</span></h1>
  <p id="job-summary"></p>
</hgroup>
<progress id="job-progress" value="{{job['progress']}}" max="100"{{!' class="failed"' if job['status'] == 'failed' else ''}}></progress>
<p id="job-blocked" class="error" role="status"{{!'' if job.get('blocked') else ' hidden'}}>{{job.get('blocked') or ''}}</p>
<figure id="job-preview" class="preview" hidden><img alt="the job's newest frame"><figcaption></figcaption></figure>
<div class="toolbar admin-only">
  <button type="button" class="secondary" data-action="pause">Pause</button>
  <button type="button" class="secondary" data-action="resume">Resume</button>
  <button type="button" class="secondary" data-action="requeue">Requeue</button>
  <button type="button" class="secondary contrast" data-action="cancel">Cancel</button>
  <label class="inline">Priority <input type="number" id="priority" min="0" max="100" value="{{job['priority']}}"></label>
  <button type="button" class="secondary" id="set-priority">Set</button>
</div>
<p><code id="job-argv"></code></p>
<div class="overflow-auto">
<table class="striped" id="tasks">
  <thead><tr><th>#</th><th>Frames</th><th>Status</th><th>Worker</th><th>Attempts</th><th>Exit</th><th>Elapsed</th><th>Progress</th><th>Why</th><th></th></tr></thead>
  <tbody></tbody>
</table>
</div>
<article id="log-box" hidden>
  <header><strong id="log-title">Log</strong> <label class="inline"><input type="checkbox" id="follow" checked> follow</label></header>
  <pre id="log" class="log"></pre>
</article>
