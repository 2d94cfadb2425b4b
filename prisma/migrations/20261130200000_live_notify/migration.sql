-- Live updates (docs/decisions/0022-live-updates.md): every change to a project, a task or a
-- session's revocation is announced on the `keel_live` channel by a trigger, so the NOTIFY belongs
-- to the writing transaction (a rolled-back write announces nothing) whatever code path wrote it.
-- Payloads carry ids and versions only (well under NOTIFY's 8000-byte limit).

CREATE FUNCTION "keel_live_project"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  op text;
  payload jsonb;
BEGIN
  IF TG_OP = 'INSERT' THEN
    payload := jsonb_build_object('k', 'p', 'op', 'created', 'id', NEW.id, 'v', NEW.version, 'o', NEW.owner_id);
  ELSIF TG_OP = 'DELETE' THEN
    payload := jsonb_build_object('k', 'p', 'op', 'deleted', 'id', OLD.id, 'v', OLD.version, 'o', OLD.owner_id);
  ELSE
    op := CASE WHEN OLD.archived_at IS NULL AND NEW.archived_at IS NOT NULL THEN 'archived' ELSE 'updated' END;
    payload := jsonb_build_object('k', 'p', 'op', op, 'id', NEW.id, 'v', NEW.version, 'o', NEW.owner_id);
    IF NEW.owner_id IS DISTINCT FROM OLD.owner_id THEN
      payload := payload || jsonb_build_object('po', OLD.owner_id);
    END IF;
  END IF;
  PERFORM pg_notify('keel_live', payload::text);
  RETURN NULL;
END;
$$;

CREATE TRIGGER "projects_live" AFTER INSERT OR UPDATE OR DELETE ON "projects"
  FOR EACH ROW EXECUTE FUNCTION "keel_live_project"();

CREATE FUNCTION "keel_live_task"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  payload jsonb;
BEGIN
  IF TG_OP = 'INSERT' THEN
    payload := jsonb_build_object('k', 't', 'op', 'created', 'id', NEW.id, 'v', NEW.version, 'p', NEW.project_id);
  ELSIF TG_OP = 'DELETE' THEN
    payload := jsonb_build_object('k', 't', 'op', 'deleted', 'id', OLD.id, 'v', OLD.version, 'p', OLD.project_id);
  ELSE
    payload := jsonb_build_object('k', 't', 'op', 'updated', 'id', NEW.id, 'v', NEW.version, 'p', NEW.project_id);
    IF NEW.project_id IS DISTINCT FROM OLD.project_id THEN
      payload := payload || jsonb_build_object('pp', OLD.project_id);
    END IF;
  END IF;
  PERFORM pg_notify('keel_live', payload::text);
  RETURN NULL;
END;
$$;

CREATE TRIGGER "tasks_live" AFTER INSERT OR UPDATE OR DELETE ON "tasks"
  FOR EACH ROW EXECUTE FUNCTION "keel_live_task"();

-- A revoked (or deleted) session's streams end at once, on every instance.
CREATE FUNCTION "keel_live_session"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('keel_live', jsonb_build_object('k', 's', 'id', OLD.id, 'u', OLD.user_id)::text);
  ELSIF OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL THEN
    PERFORM pg_notify('keel_live', jsonb_build_object('k', 's', 'id', NEW.id, 'u', NEW.user_id)::text);
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER "sessions_live" AFTER UPDATE OF "revoked_at" OR DELETE ON "sessions"
  FOR EACH ROW EXECUTE FUNCTION "keel_live_session"();
