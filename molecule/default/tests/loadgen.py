"""Load generator for the rolling deployment tests: logged-in users through the load balancer.

* :func:`create_users` creates (idempotently) ``count`` users on the sandbox
  database through ``django-manage shell`` on an app host;
* :func:`login_all` logs them in through the real login form (CSRF token,
  POST, 302 + ``sessionid``) via the load balancer;
* :class:`Load` is a context manager that keeps those users busy while a
  playbook runs: HTTP workers request ``/whoami`` with each user's cookie and
  WebSocket clients hold ``/ws/whoami/`` open, and both count what a user would
  notice: errors, logouts, dropped sockets.

Only the standard library, ``requests`` and ``websockets`` (the controller
venv has both). Nothing here asserts: :meth:`Load.stats` returns the counts
and the tests decide.
"""

import collections
import http.cookiejar
import json
import os
import re
import socket
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect as ws_connect

import sandbox

CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
#: Hosts the users log in on: most on the default host, every fifth on a
#: tenant (a session is only valid on the tenant it was made on).
DEFAULT_HOST = "localhost"
TENANT_HOST = "tenant-a.localhost"
#: Close codes of a server that shuts a WebSocket down on purpose: normal,
#: going away, service restart, try again later.
CLEAN_CLOSE_CODES = (1000, 1001, 1012, 1013)


@dataclass(frozen=True)
class UserSession:
    username: str
    host: str  # the Host header the user logged in with (and keeps using)
    sessionid: str
    tenant: str | None  # what /whoami reported right after the login


_CREATE_USERS = """
import os
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
User = get_user_model()
names = os.environ["LOADGEN_USERS"].split(",")
digest = make_password(os.environ["LOADGEN_PASSWORD"])
existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
User.objects.bulk_create([User(username=n, password=digest, is_active=True) for n in names if n not in existing])
User.objects.filter(username__in=names).update(password=digest, is_active=True)
print("LOADGEN_USERS_OK", User.objects.filter(username__in=names, is_active=True).count())
"""


def create_users(prefix, count=50, password="loadgen-Secret-42", app_host="app1", sandbox_prefix=None):
    """Create users ``<prefix>000`` .. on the sandbox database; return their names.

    Idempotent: existing users get the password again. One ``make_password``
    for all of them (hashing is what makes user creation slow). The password
    reaches the container through the environment, not argv.
    """
    names = [f"{prefix}{i:03d}" for i in range(count)]
    active = sandbox.django_shell(_CREATE_USERS, "LOADGEN_USERS_OK", host=app_host, timeout=300,
                                  env={"LOADGEN_USERS": ",".join(names), "LOADGEN_PASSWORD": password},
                                  prefix=sandbox_prefix)
    if active != count:
        raise RuntimeError(f"{active} of {count} users active after creating them on {app_host}")
    return names


def _no_cookies_session():
    """A requests.Session that sends only the cookies it is given explicitly."""
    web = requests.Session()
    web.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return web


def login(lb_url, username, password, host=DEFAULT_HOST, timeout=60):
    """Log ``username`` in through the login form on ``host``; return a :class:`UserSession`."""
    web = requests.Session()
    headers = {"Host": host}
    page = web.get(f"{lb_url}/accounts/login/", headers=headers, timeout=timeout)
    if page.status_code != 200:
        raise RuntimeError(f"GET /accounts/login/ as {username}: {page.status_code} {page.text[:300]}")
    match = CSRF_RE.search(page.text)
    if not match or not web.cookies.get("csrftoken"):
        raise RuntimeError(f"no CSRF token in the login form for {username}")
    answer = web.post(
        f"{lb_url}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": match.group(1), "next": "/whoami"},
        headers={**headers, "Referer": f"http://{host}/accounts/login/"},
        allow_redirects=False,
        timeout=timeout,
    )
    sessionid = web.cookies.get("sessionid")
    if answer.status_code != 302 or not sessionid:
        raise RuntimeError(f"login of {username} on {host}: {answer.status_code}, sessionid={bool(sessionid)}, "
                           f"{answer.text[:300]}")
    me = requests.get(f"{lb_url}/whoami", headers={"Host": host, "Cookie": f"sessionid={sessionid}"},
                      timeout=timeout).json()
    if not me.get("authenticated") or me.get("username") != username:
        raise RuntimeError(f"{username} is not authenticated right after the login: {me}")
    return UserSession(username=username, host=host, sessionid=sessionid, tenant=me.get("tenant"))


def login_all(lb_url, users, password, workers=4, tenant_every=5):
    """Log every user in (a few in parallel); every ``tenant_every``-th user on the tenant host."""

    def one(item):
        index, username = item
        host = TENANT_HOST if tenant_every and index % tenant_every == tenant_every - 1 else DEFAULT_HOST
        return login(lb_url, username, password, host=host)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, enumerate(users)))


def logged_in_users(lb_url, prefix, password, count=50):
    """Create ``count`` users named ``<prefix>NNN`` and log them all in; return their sessions."""
    return login_all(lb_url, create_users(prefix, count, password=password), password)


def check_sessions(lb_url, sessions, timeout=30):
    """Users (of ``sessions``) whom /whoami no longer reports as themselves, with what it said."""
    lost = {}
    web = _no_cookies_session()
    for user in sessions:
        answer = web.get(f"{lb_url}/whoami", headers={"Host": user.host, "Cookie": f"sessionid={user.sessionid}"},
                         timeout=timeout)
        body = answer.json() if answer.status_code == 200 else {"status": answer.status_code}
        if not (body.get("authenticated") and body.get("username") == user.username
                and body.get("tenant") == user.tenant):
            lost[user.username] = body
    return lost


def _percentile(values, fraction):
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 4)


class Load:
    """Logged-in users hitting the load balancer over HTTP and WebSocket.

    ``with Load(lb_url, sessions) as load: ...`` then ``load.stats()``.

    Counted on HTTP (``GET /whoami`` with the user's cookie and Host):
    ``requests``; ``failures`` (connection error, timeout, any status other
    than 200); ``logouts`` (200 but not authenticated as that user on that
    tenant) and ``logged_out_users`` (distinct users).

    On WebSocket (``/ws/whoami/``, one message a second per client):
    ``ws_messages`` answered correctly; ``ws_reconnects`` (the socket was
    closed or broke and a new one was opened); ``ws_logouts`` (a socket
    answered, on connect or later, as someone else or anonymous);
    ``ws_failures`` (a client could not get a working socket back for
    ``ws_outage`` seconds; counted once per outage); ``ws_timeouts`` (an open
    socket did not answer within ``ws_timeout``; the client reconnects);
    ``ws_abnormal_closes`` (a socket closed without a close frame or with a
    code other than :data:`CLEAN_CLOSE_CODES`: the server broke it);
    ``ws_connect_errors`` (a handshake refused, e.g. 502/503, or the
    connection to the load balancer failed).
    """

    def __init__(self, lb_url, sessions, http_workers=8, ws_clients=20, http_timeout=20, http_pause=0.1,
                 ws_interval=1.0, ws_timeout=20, ws_outage=15):
        if not sessions:
            raise ValueError("Load needs at least one logged-in session")
        self.lb_url = lb_url.rstrip("/")
        parsed = urllib.parse.urlsplit(self.lb_url)
        self._address = (parsed.hostname, parsed.port or 80)
        self.sessions = list(sessions)
        # Like a browser: a Set-Cookie of sessionid (Django cycles the key when
        # a session was signed with a SECRET_KEY_FALLBACKS key) replaces the
        # user's cookie for the next HTTP request and WebSocket connection.
        self.cookies = {user.username: user.sessionid for user in self.sessions}
        self.cookie_updates = 0
        self.http_workers = http_workers
        self.ws_clients = ws_clients
        self.http_timeout = http_timeout
        self.http_pause = http_pause
        self.ws_interval = ws_interval
        self.ws_timeout = ws_timeout
        self.ws_outage = ws_outage
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = []
        self._next_user = 0
        self.counts = collections.Counter()
        self.failure_kinds = collections.Counter()
        self.ws_close_codes = collections.Counter()
        self.logged_out_users = set()
        self.ws_logged_out_users = set()
        self.examples = []  # first few anomalies, for the report
        self.ws_last_ok = {}  # client index -> monotonic time of its last correct answer
        self.ws_client_reconnects = collections.Counter()  # client index -> reconnects
        self.timeline = []  # (seconds since start, "http"|"ws", latency, ok)
        self.started = self.stopped = self.stop_requested = None

    # -- bookkeeping -------------------------------------------------------
    def _count(self, name, n=1):
        with self._lock:
            self.counts[name] += n

    def _note(self, kind, detail):
        with self._lock:
            self.failure_kinds[kind] += 1
            if len(self.examples) < 20:
                self.examples.append({"t": round(time.monotonic() - self.started, 2), "kind": kind,
                                      "detail": str(detail)[:300]})

    def _sample(self, kind, start, latency, ok):
        with self._lock:
            self.timeline.append((round(start - self.started, 3), kind, round(latency, 4), ok))

    def _cookie(self, user):
        with self._lock:
            return self.cookies[user.username]

    def current_sessions(self):
        """The users with the cookies they hold now (after any Set-Cookie)."""
        with self._lock:
            return [UserSession(username=u.username, host=u.host, sessionid=self.cookies[u.username], tenant=u.tenant)
                    for u in self.sessions]

    def _pick_user(self):
        with self._lock:
            user = self.sessions[self._next_user % len(self.sessions)]
            self._next_user += 1
            return user

    # -- HTTP --------------------------------------------------------------
    def _http_worker(self):
        url = f"{self.lb_url}/whoami"
        while not self._stop.is_set():
            user = self._pick_user()
            start = time.monotonic()
            ok = False
            try:
                answer = requests.get(url, headers={"Host": user.host, "Cookie": f"sessionid={self._cookie(user)}",
                                                    "Connection": "close"},
                                      timeout=self.http_timeout, allow_redirects=False)
                renewed = answer.cookies.get("sessionid")
                if renewed:
                    with self._lock:
                        self.cookies[user.username] = renewed
                        self.cookie_updates += 1
            except requests.RequestException as exc:
                self._count("failures")
                self._note(f"http:{type(exc).__name__}", exc)
            else:
                if answer.status_code != 200:
                    self._count("failures")
                    self._note(f"http:status {answer.status_code}", answer.text[:200])
                else:
                    try:
                        body = answer.json()
                    except ValueError:
                        body = None
                    if body is None:
                        self._count("failures")
                        self._note("http:not json", answer.text[:200])
                    elif (body.get("authenticated") and body.get("username") == user.username
                          and body.get("tenant") == user.tenant):
                        ok = True
                    else:
                        self._count("logouts")
                        with self._lock:
                            self.logged_out_users.add(user.username)
                        self._note("http:logout", {"user": user.username, "host": user.host, "answer": body})
            self._count("requests")
            self._sample("http", start, time.monotonic() - start, ok)
            self._stop.wait(self.http_pause)

    # -- WebSocket ---------------------------------------------------------
    def _ws_open(self, user):
        host, port = self._address
        sock = socket.create_connection((host, port), timeout=self.ws_timeout)
        try:
            return ws_connect(
                f"ws://{user.host}:{port}/ws/whoami/",
                sock=sock,
                origin=f"http://{user.host}:{port}",
                additional_headers={"Cookie": f"sessionid={self._cookie(user)}"},
                open_timeout=self.ws_timeout,
                close_timeout=5,
            )
        except BaseException:
            sock.close()
            raise

    def _ws_check(self, user, raw, context):
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if body and body.get("authenticated") and body.get("username") == user.username \
                and body.get("tenant") == user.tenant:
            return True
        self._count("ws_logouts")
        with self._lock:
            self.ws_logged_out_users.add(user.username)
        self._note("ws:logout", {"user": user.username, "when": context, "answer": body if body else raw})
        return False

    def _ws_client(self, index):
        user = self.sessions[index % len(self.sessions)]
        first = True
        down_since = None  # monotonic time the client lost its working socket
        outage_counted = False
        while not self._stop.is_set():
            ws = None
            try:
                ws = self._ws_open(user)
                start = time.monotonic()
                hello = ws.recv(timeout=self.ws_timeout)
                self._sample("ws", start, time.monotonic() - start, True)
                if not first:
                    self._count("ws_reconnects")
                    with self._lock:
                        self.ws_client_reconnects[index] += 1
                first = False
                if not self._ws_check(user, hello, "connect"):
                    ws.close()
                    self._stop.wait(self.ws_interval)
                    continue
                down_since, outage_counted = None, False
                with self._lock:
                    self.ws_last_ok[index] = time.monotonic()
                while not self._stop.wait(self.ws_interval):
                    start = time.monotonic()
                    ws.send("{}")
                    answer = ws.recv(timeout=self.ws_timeout)
                    ok = self._ws_check(user, answer, "message")
                    self._sample("ws", start, time.monotonic() - start, ok)
                    if ok:
                        self._count("ws_messages")
                        with self._lock:
                            self.ws_last_ok[index] = time.monotonic()
            except TimeoutError as exc:
                # open_timeout/recv timeout: the server did not answer in time.
                self._count("ws_timeouts")
                self._note("ws:timeout", exc)
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                with self._lock:
                    self.ws_close_codes[str(code)] += 1
                if code not in CLEAN_CLOSE_CODES:
                    # No close frame (the connection just broke) or a server error.
                    self._count("ws_abnormal_closes")
                    self._note("ws:abnormal close", f"{user.username}: code {code} ({exc})")
            except (InvalidStatus, InvalidHandshake, OSError) as exc:
                detail = exc.response.status_code if isinstance(exc, InvalidStatus) else type(exc).__name__
                self._count("ws_connect_errors")
                self._note(f"ws:connect {detail}", f"{user.username}: {exc}")
            finally:
                if ws is not None:
                    try:
                        ws.close()
                    except Exception:  # noqa: BLE001 - already broken
                        pass
            if self._stop.is_set():
                break
            now = time.monotonic()
            if down_since is None:
                down_since = now
            elif not outage_counted and now - down_since > self.ws_outage:
                outage_counted = True
                self._count("ws_failures")
                self._note("ws:outage", f"{user.username}: no working socket for {now - down_since:.1f}s")
            self._stop.wait(0.5)

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self):
        self.started = time.monotonic()
        self.started_wall = time.time()
        for i in range(self.http_workers):
            self._threads.append(threading.Thread(target=self._http_worker, name=f"http-{i}", daemon=True))
        for i in range(self.ws_clients):
            self._threads.append(threading.Thread(target=self._ws_client, args=(i,), name=f"ws-{i}", daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def stop(self):
        if self.stopped is None:
            self.stop_requested = time.monotonic()
            self._stop.set()
            for thread in self._threads:
                thread.join(timeout=max(self.http_timeout, self.ws_timeout) + 10)
            self.stopped = time.monotonic()

    def stats(self):
        """Counts of what the users saw (a plain dict, JSON-serialisable)."""
        with self._lock:
            http = [s for s in self.timeline if s[1] == "http"]
            latencies = [s[2] for s in http]
            end = self.stop_requested or time.monotonic()
            return {
                "duration_s": round(end - self.started, 1),
                "requests": self.counts["requests"],
                "failures": self.counts["failures"],
                "logouts": self.counts["logouts"],
                "logged_out_users": len(self.logged_out_users),
                "http_latency_p50_s": _percentile(latencies, 0.5),
                "http_latency_p95_s": _percentile(latencies, 0.95),
                "http_latency_max_s": round(max(latencies), 4) if latencies else None,
                "ws_clients": self.ws_clients,
                "ws_messages": self.counts["ws_messages"],
                "ws_reconnects": self.counts["ws_reconnects"],
                # clients that lost their socket at least once and got a new one
                "ws_clients_reconnected": len(self.ws_client_reconnects),
                # clients with a correct answer in the last few seconds before stop()
                "ws_clients_alive_at_end": sum(1 for t in self.ws_last_ok.values()
                                               if end - t <= self.ws_interval * 3 + 2),
                "ws_logouts": self.counts["ws_logouts"],
                "ws_logged_out_users": len(self.ws_logged_out_users),
                "ws_failures": self.counts["ws_failures"],
                "ws_timeouts": self.counts["ws_timeouts"],
                "ws_abnormal_closes": self.counts["ws_abnormal_closes"],
                "ws_connect_errors": self.counts["ws_connect_errors"],
                "ws_close_codes": dict(self.ws_close_codes),
                "failure_kinds": dict(self.failure_kinds),
                "cookie_updates": self.cookie_updates,
                "examples": list(self.examples),
            }

    def write(self, path, extra=None):
        """Write stats (and the timeline, for benchmarks) as JSON to ``path``."""
        data = {"stats": self.stats(), "started_unix": self.started_wall, **(extra or {}),
                "timeline": [list(s) for s in self.timeline]}
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        return path
