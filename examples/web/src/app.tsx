import { isTwoFactorChallenge, type Project, type ProjectPage } from '@keel/client-sdk';
import { type InfiniteData, useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useSubscription } from '@trpc/tanstack-react-query';
import { type FormEvent, type ReactNode, useEffect, useState } from 'react';
import { fieldErrorsOf, keel, messageOf, sessionEvents, useTRPC } from './api.ts';

type Status = 'loading' | 'signed-in' | 'signed-out';

export function App() {
  const [status, setStatus] = useState<Status>('loading');
  const queryClient = useQueryClient();
  useEffect(() => {
    // Cookie mode: the refresh cookie (if any) gives this page a session.
    void keel.refresh().then((ok) => setStatus(ok ? 'signed-in' : 'signed-out'));
    const expired = () => {
      queryClient.clear();
      setStatus('signed-out');
    };
    sessionEvents.addEventListener('expired', expired);
    return () => sessionEvents.removeEventListener('expired', expired);
  }, [queryClient]);

  if (status === 'loading') return <p>Loading…</p>;
  if (status === 'signed-out') return <AuthForm onSignedIn={() => setStatus('signed-in')} />;
  return (
    <Home
      onSignedOut={() => {
        queryClient.clear();
        setStatus('signed-out');
      }}
    />
  );
}

function Field(props: {
  label: string;
  name: string;
  type?: string;
  value: string;
  onChange: (v: string) => void;
  errors?: string[] | undefined;
}) {
  return (
    <label style={{ display: 'block', margin: '0.5rem 0' }}>
      {props.label}{' '}
      <input name={props.name} type={props.type ?? 'text'} value={props.value} onChange={(e) => props.onChange(e.target.value)} />
      {props.errors?.map((message) => (
        <span key={message} role="alert" data-field-error={props.name} style={{ color: 'crimson', marginLeft: '0.5rem' }}>
          {message}
        </span>
      ))}
    </label>
  );
}

function AuthForm({ onSignedIn }: { onSignedIn: () => void }) {
  const [mode, setMode] = useState<'sign-in' | 'sign-up'>('sign-in');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [name, setName] = useState('');
  const [error, setError] = useState<unknown>(null);
  // An account with two-factor sign-in answers a challenge instead of tokens: ask for a code.
  const [challenge, setChallenge] = useState<string | null>(null);
  const [code, setCode] = useState('');
  const fields = fieldErrorsOf(error);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      if (challenge !== null) {
        await keel.verifyTwoFactor({ challenge, code });
      } else if (mode === 'sign-up') {
        await keel.register({ email, password, ...(name ? { name } : {}) });
      } else {
        const result = await keel.login({ email, password });
        if (isTwoFactorChallenge(result)) {
          setChallenge(result.challenge);
          return;
        }
      }
      onSignedIn();
    } catch (caught) {
      setError(caught);
    }
  }

  if (challenge !== null) {
    return (
      <form onSubmit={submit} aria-label="two-factor">
        <h1>Two-factor sign-in</h1>
        <Field label="Code from your authenticator app" name="code" value={code} onChange={setCode} errors={fields.code} />
        {error !== null && Object.keys(fields).length === 0 && <p role="alert">{messageOf(error)}</p>}
        <button type="submit">Verify</button>
      </form>
    );
  }

  return (
    <form onSubmit={submit} aria-label={mode}>
      <h1>{mode === 'sign-in' ? 'Sign in' : 'Sign up'}</h1>
      {mode === 'sign-up' && <Field label="Name" name="name" value={name} onChange={setName} errors={fields.name} />}
      <Field label="Email" name="email" value={email} onChange={setEmail} errors={fields.email} />
      <Field label="Password" name="password" type="password" value={password} onChange={setPassword} errors={fields.password} />
      {error !== null && Object.keys(fields).length === 0 && <p role="alert">{messageOf(error)}</p>}
      <button type="submit">{mode === 'sign-in' ? 'Sign in' : 'Create account'}</button>{' '}
      <button type="button" onClick={() => setMode(mode === 'sign-in' ? 'sign-up' : 'sign-in')}>
        {mode === 'sign-in' ? 'I need an account' : 'I have an account'}
      </button>
    </form>
  );
}

function Home({ onSignedOut }: { onSignedOut: () => void }) {
  const trpc = useTRPC();
  const me = useQuery(trpc.auth.me.queryOptions());
  const [selected, setSelected] = useState<string | null>(null);
  return (
    <main style={{ fontFamily: 'system-ui', maxWidth: 900, margin: '1rem auto' }}>
      <header style={{ display: 'flex', justifyContent: 'space-between' }}>
        <strong data-testid="me">{me.data ? (me.data.name ?? me.data.email) : '…'}</strong>
        <button
          type="button"
          onClick={() => {
            void keel.logout().finally(onSignedOut);
          }}
        >
          Sign out
        </button>
      </header>
      <div style={{ display: 'grid', gridTemplateColumns: '1fr 1fr', gap: '2rem' }}>
        <Projects selected={selected} onSelect={setSelected} />
        {selected ? <Tasks projectId={selected} onGone={() => setSelected(null)} /> : <p>Select a project to see its tasks.</p>}
      </div>
      <Sessions />
    </main>
  );
}

function Section({ title, children }: { title: string; children: ReactNode }) {
  return (
    <section aria-label={title}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

function Projects({ selected, onSelect }: { selected: string | null; onSelect: (id: string) => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  // Paged by hand: tRPC's infiniteQueryOptions adds a `direction` field, which the server's strict input refuses.
  const list = useInfiniteQuery({
    queryKey: trpc.projects.list.infiniteQueryKey({ limit: 5 }),
    queryFn: ({ pageParam }) => keel.projects.list.query({ limit: 5, ...(pageParam ? { cursor: pageParam } : {}) }),
    initialPageParam: null as string | null,
    getNextPageParam: (page) => page.nextCursor,
  });
  const [live, setLive] = useState('connecting');
  // A change anywhere (another tab, another device, the REST API) reloads the list.
  useSubscription(
    trpc.projects.onChange.subscriptionOptions(undefined, {
      onData: () => {
        setLive('live');
        void queryClient.invalidateQueries(trpc.projects.list.pathFilter());
      },
      onError: () => setLive('offline'),
    }),
  );
  const [name, setName] = useState('');
  const create = useMutation(
    trpc.projects.create.mutationOptions({
      onSuccess: () => {
        setName('');
        void queryClient.invalidateQueries(trpc.projects.list.pathFilter());
      },
    }),
  );
  const projects = list.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <Section title="Projects">
      <small data-testid="live-status">{live}</small>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate({ name });
        }}
      >
        <Field label="New project" name="project-name" value={name} onChange={setName} errors={fieldErrorsOf(create.error).name} />
        {create.error && !fieldErrorsOf(create.error).name && <p role="alert">{messageOf(create.error)}</p>}
        <button type="submit" disabled={create.isPending}>
          Create
        </button>
      </form>
      <ul>
        {projects.map((project) => (
          <ProjectRow key={project.id} project={project} selected={project.id === selected} onSelect={() => onSelect(project.id)} />
        ))}
      </ul>
      {list.hasNextPage && (
        <button type="button" onClick={() => void list.fetchNextPage()} disabled={list.isFetchingNextPage}>
          More projects
        </button>
      )}
    </Section>
  );
}

function ProjectRow({ project, selected, onSelect }: { project: Project; selected: boolean; onSelect: () => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [editing, setEditing] = useState<string | null>(null);
  const filter = trpc.projects.list.pathFilter();
  const setName = (id: string, name: string) =>
    queryClient.setQueriesData<InfiniteData<ProjectPage>>(filter, (data) =>
      data ? { ...data, pages: data.pages.map((p) => ({ ...p, items: p.items.map((i) => (i.id === id ? { ...i, name } : i)) })) } : data,
    );
  // Optimistic: the new name shows at once; a CONFLICT (someone changed it meanwhile) puts the old
  // one back and shows the server's message.
  const rename = useMutation(
    trpc.projects.update.mutationOptions({
      onMutate: async (input) => {
        await queryClient.cancelQueries(filter);
        const before = queryClient.getQueriesData<InfiniteData<ProjectPage>>(filter);
        if (input.name) setName(input.id, input.name);
        return { before };
      },
      onError: (_error, _input, context) => {
        for (const [key, data] of context?.before ?? []) queryClient.setQueryData(key, data);
      },
      onSettled: () => queryClient.invalidateQueries(filter),
    }),
  );
  const archive = useMutation(trpc.projects.archive.mutationOptions({ onSettled: () => queryClient.invalidateQueries(filter) }));
  return (
    <li data-testid="project" data-name={project.name} style={{ fontWeight: selected ? 'bold' : 'normal', margin: '0.25rem 0' }}>
      {editing === null ? (
        <>
          <button type="button" onClick={onSelect}>
            {project.name}
          </button>{' '}
          v{project.version}
          {project.archivedAt && ' (archived)'}{' '}
          <button type="button" onClick={() => setEditing(project.name)}>
            Rename
          </button>{' '}
          {!project.archivedAt && (
            <button type="button" onClick={() => archive.mutate({ id: project.id, version: project.version })}>
              Archive
            </button>
          )}
        </>
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            rename.mutate({ id: project.id, version: project.version, name: editing });
            setEditing(null);
          }}
        >
          <Field label="Name" name="rename" value={editing} onChange={setEditing} />
          <button type="submit">Save</button>
        </form>
      )}
      {rename.error && (
        <span role="alert" data-testid="rename-error">
          {' '}
          {messageOf(rename.error)}
        </span>
      )}
      {archive.error && <span role="alert"> {messageOf(archive.error)}</span>}
    </li>
  );
}

function Tasks({ projectId, onGone }: { projectId: string; onGone: () => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const filter = trpc.tasks.list.pathFilter();
  const list = useInfiniteQuery({
    queryKey: trpc.tasks.list.infiniteQueryKey({ projectId, limit: 10 }),
    queryFn: ({ pageParam }) => keel.tasks.list.query({ projectId, limit: 10, ...(pageParam ? { cursor: pageParam } : {}) }),
    initialPageParam: null as string | null,
    getNextPageParam: (page) => page.nextCursor,
  });
  const [gone, setGone] = useState<string | null>(null);
  useSubscription(
    trpc.tasks.onChange.subscriptionOptions(
      { projectId },
      {
        onData: () => void queryClient.invalidateQueries(filter),
        onError: (error) => setGone(messageOf(error)),
      },
    ),
  );
  const [title, setTitle] = useState('');
  const create = useMutation(
    trpc.tasks.create.mutationOptions({
      onSuccess: () => {
        setTitle('');
        void queryClient.invalidateQueries(filter);
      },
    }),
  );
  const move = useMutation(trpc.tasks.move.mutationOptions({ onSettled: () => queryClient.invalidateQueries(filter) }));
  const tasks = list.data?.pages.flatMap((p) => p.items) ?? [];
  if (gone) {
    return (
      <Section title="Tasks">
        <p role="alert">{gone}</p>
        <button type="button" onClick={onGone}>
          Close
        </button>
      </Section>
    );
  }
  return (
    <Section title="Tasks">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate({ projectId, title });
        }}
      >
        <Field label="New task" name="task-title" value={title} onChange={setTitle} errors={fieldErrorsOf(create.error).title} />
        {create.error && !fieldErrorsOf(create.error).title && <p role="alert">{messageOf(create.error)}</p>}
        <button type="submit">Add</button>
      </form>
      <ol>
        {tasks.map((task) => (
          <li key={task.id} data-testid="task">
            {task.title} ({task.status.toLowerCase().replace('_', ' ')}){' '}
            <button
              type="button"
              disabled={task.position === 0}
              onClick={() => move.mutate({ id: task.id, version: task.version, position: task.position - 1 })}
            >
              Up
            </button>{' '}
            <button type="button" onClick={() => move.mutate({ id: task.id, version: task.version, position: task.position + 1 })}>
              Down
            </button>
          </li>
        ))}
      </ol>
      {move.error && <p role="alert">{messageOf(move.error)}</p>}
      {list.hasNextPage && (
        <button type="button" onClick={() => void list.fetchNextPage()}>
          More tasks
        </button>
      )}
    </Section>
  );
}

function Sessions() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const sessions = useQuery(trpc.auth.sessions.list.queryOptions({}));
  const revoke = useMutation(
    trpc.auth.sessions.revoke.mutationOptions({ onSettled: () => queryClient.invalidateQueries(trpc.auth.sessions.list.pathFilter()) }),
  );
  return (
    <Section title="Sessions">
      <ul>
        {sessions.data?.items.map((s) => (
          <li key={s.id} data-testid="session">
            {s.userAgent?.slice(0, 60) ?? 'unknown device'} · since {s.createdAt.toLocaleString()}
            {s.current ? (
              ' (this one)'
            ) : (
              <button type="button" onClick={() => revoke.mutate({ sessionId: s.id })}>
                Revoke
              </button>
            )}
          </li>
        ))}
      </ul>
      {revoke.error && <p role="alert">{messageOf(revoke.error)}</p>}
    </Section>
  );
}
