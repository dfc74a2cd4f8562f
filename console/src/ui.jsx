// Shared pieces: loading and empty states, error notes, labelled form fields that show the
// gateway's field violations next to themselves, and the decision box of the review queues.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.js';
import { L } from './i18n.js';

// Loads with `fn` whenever `deps` change: { data, error, loading, reload }.
export function useLoad(fn, deps) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const seq = useRef(0);
  const run = useCallback(() => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true, error: null }));
    Promise.resolve()
      .then(fn)
      .then(
        (data) => mine === seq.current && setState({ data, error: null, loading: false }),
        (error) => mine === seq.current && setState({ data: undefined, error, loading: false }),
      );
  }, deps);
  useEffect(run, [run]);
  return { ...state, reload: run };
}

export function Loading() {
  return (
    <p class="loading" role="status" aria-live="polite">
      {L('加载中…', 'Loading…')}
    </p>
  );
}

export function Empty({ children }) {
  return <p class="empty">{children || L('暂无数据', 'Nothing here yet')}</p>;
}

// An error that is not tied to a field. A stale etag offers to reload.
export function ErrorNote({ error, onReload }) {
  if (!error) return null;
  if (error instanceof ApiError && error.stale) {
    return (
      <div class="error" role="alert">
        <p>{L('该记录已被他人修改，请重新加载后再试。', 'This record was changed by someone else; reload it and try again.')}</p>
        {onReload && (
          <button type="button" class="secondary" onClick={onReload}>
            {L('重新加载', 'Reload')}
          </button>
        )}
      </div>
    );
  }
  const status = error instanceof ApiError && error.httpStatus === 403 ? L('无权操作：', 'Not allowed: ') : '';
  return (
    <div class="error" role="alert">
      <p>
        {status}
        {error.message}
      </p>
    </div>
  );
}

// Shows what a load gave: loading, its error, an empty state, or the children for the data.
export function Loaded({ load, empty, isEmpty, children }) {
  if (load.loading && load.data === undefined) return <Loading />;
  if (load.error) return <ErrorNote error={load.error} onReload={load.reload} />;
  if (isEmpty ? isEmpty(load.data) : Array.isArray(load.data) && load.data.length === 0) return <Empty>{empty}</Empty>;
  return children(load.data);
}

let nextId = 0;
const fieldId = (name) => `f-${name.replace(/[^A-Za-z0-9_-]/g, '-')}-${++nextId}`;

// A form's values and the errors the server gave per field. `submit(fn)` runs fn(values) and
// spreads an ApiError over its fields; violations of fields the form does not show stay in
// `general` with the error's message.
export function useForm(initial) {
  const [values, setValues] = useState(initial);
  const [errors, setErrors] = useState({});
  const [general, setGeneral] = useState(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);
  const shown = useRef(new Set());
  const set = (name, value) => setValues((v) => ({ ...v, [name]: value }));
  const submit = async (fn, e) => {
    if (e) e.preventDefault();
    setBusy(true);
    setDone(false);
    setErrors({});
    setGeneral(null);
    try {
      const result = await fn(values);
      setDone(true);
      return result;
    } catch (err) {
      const fieldErrors = {};
      const rest = [];
      if (err instanceof ApiError) {
        for (const [field, description] of Object.entries(err.fields)) {
          // An element of a list shown as one field ("talent.skills[1]") belongs to that field.
          const target = shown.current.has(field) ? field : field.replace(/\[\d+\]$/, '');
          if (shown.current.has(target)) {
            fieldErrors[target] = fieldErrors[target] ? `${fieldErrors[target]}; ${description}` : description;
          } else {
            rest.push(`${field}: ${description}`);
          }
        }
      }
      setErrors(fieldErrors);
      if (rest.length > 0) {
        setGeneral(new Error(`${err.message} (${rest.join('; ')})`));
      } else if (Object.keys(fieldErrors).length === 0) {
        setGeneral(err);
      }
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  // Registers a field by the name the service gives it in field violations.
  const field = (name) => {
    shown.current.add(name);
    return { name, value: values[name], error: errors[name], onValue: (v) => set(name, v) };
  };
  return { values, set, setValues, errors, general, busy, done, submit, field, setGeneral };
}

// A form's submit button, what became of the last submission, and its error that no field shows.
export function FormActions({ form, label, onReload }) {
  return (
    <>
      <div class="actions">
        <button type="submit" disabled={form.busy}>
          {label}
        </button>
        {form.done && (
          <span class="ok" role="status">
            {L('已保存', 'Saved')}
          </span>
        )}
      </div>
      <ErrorNote error={form.general} onReload={onReload} />
    </>
  );
}

// A labelled input, select or textarea; the server's message appears under it.
export function Field({ label, name, value, error, onValue, type = 'text', options, hint, rows, ...rest }) {
  const id = useRef(fieldId(name)).current;
  const errorId = `${id}-error`;
  const hintId = `${id}-hint`;
  const describedBy = [hint ? hintId : '', error ? errorId : ''].filter(Boolean).join(' ') || undefined;
  const common = {
    id,
    name,
    'aria-invalid': error ? 'true' : undefined,
    'aria-describedby': describedBy,
    ...rest,
  };
  let control;
  if (type === 'select') {
    control = (
      <select {...common} value={value} onChange={(e) => onValue(e.currentTarget.value)}>
        {options.map((o) => (
          <option value={o.value} key={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    );
  } else if (type === 'textarea') {
    control = <textarea {...common} rows={rows || 3} value={value} onInput={(e) => onValue(e.currentTarget.value)} />;
  } else if (type === 'checkbox') {
    control = <input {...common} type="checkbox" checked={!!value} onChange={(e) => onValue(e.currentTarget.checked)} />;
  } else {
    control = <input {...common} type={type} value={value} onInput={(e) => onValue(e.currentTarget.value)} />;
  }
  return (
    <div class={`field${type === 'checkbox' ? ' checkbox' : ''}${error ? ' invalid' : ''}`}>
      <label for={id}>{label}</label>
      {control}
      {hint && (
        <p class="hint" id={hintId}>
          {hint}
        </p>
      )}
      {error && (
        <p class="field-error" id={errorId} role="alert" data-field={name}>
          {error}
        </p>
      )}
    </div>
  );
}

// Approve / reject / return with a reason, for one item of a review queue. `actions` is a list
// of { key, label, run(reason), needsReason, kind }.
export function Decision({ actions, onDone, subject }) {
  const form = useForm({ reason: '' });
  const [done, setDone] = useState(null);
  const act = (a) =>
    form.submit(async ({ reason }) => {
      if (a.needsReason && !reason.trim()) {
        form.setGeneral(new Error(L('请填写理由。', 'Please give a reason.')));
        return;
      }
      const result = await a.run(reason.trim());
      setDone(a.label);
      form.set('reason', '');
      if (onDone) onDone(result);
    });
  return (
    <div class="decision" aria-label={subject}>
      <Field label={L('理由', 'Reason')} type="textarea" rows={2} {...form.field('reason')} />
      <div class="actions">
        {actions.map((a) => (
          <button type="button" class={a.kind || ''} disabled={form.busy} onClick={() => act(a)} key={a.key} data-action={a.key}>
            {a.label}
          </button>
        ))}
      </div>
      <ErrorNote error={form.general} onReload={onDone} />
      {done && (
        <p class="ok" role="status">
          {L('已完成：', 'Done: ')}
          {done}
        </p>
      )}
    </div>
  );
}

export function StateBadge({ children, state }) {
  return <span class={`badge state-${String(state || '').toLowerCase()}`}>{children}</span>;
}

export function Section({ title, children, actions, id }) {
  return (
    <section class="card" aria-labelledby={id}>
      <header>
        <h2 id={id}>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}
