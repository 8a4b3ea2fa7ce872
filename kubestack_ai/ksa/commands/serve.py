"""``ksa serve``: the fleet's read-only web view, JSON API and /metrics over storage."""

from __future__ import annotations

import argparse
import os
import sys

from kubestack_ai.ksa.output import CliError
from kubestack_ai.ksa.store import open_store_when_up

ENV = {"token_ref": "KSA_WEB_TOKEN_REF", "user": "KSA_WEB_USER",
       "password_ref": "KSA_WEB_PASSWORD_REF", "metrics_token_ref": "KSA_METRICS_TOKEN_REF"}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "serve", help="the fleet's web view, JSON API and Prometheus /metrics",
        description="Serves the fleet's stored results read-only (same storage as the workers: "
                    "KSA_DATABASE_URL or $KSA_HOME). Binds 127.0.0.1; any other address needs "
                    "a token or basic-auth credentials, given by reference.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--token-ref", default=os.environ.get(ENV["token_ref"]),
                   help="bearer token for every page and API call, as env:NAME or file:/path "
                        f"(or ${ENV['token_ref']})")
    p.add_argument("--user", default=os.environ.get(ENV["user"]),
                   help=f"basic-auth user (or ${ENV['user']})")
    p.add_argument("--password-ref", default=os.environ.get(ENV["password_ref"]),
                   help=f"basic-auth password as env:NAME or file:/path (or ${ENV['password_ref']})")
    p.add_argument("--metrics-token-ref", default=os.environ.get(ENV["metrics_token_ref"]),
                   help="optional bearer token for /metrics, as env:NAME or file:/path "
                        f"(or ${ENV['metrics_token_ref']})")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="also answer requests for this Host name (repeatable; .example.com "
                        "allows the names below it, * turns the check off; or "
                        "$KSA_ALLOWED_HOSTS, comma-separated). The bind address and "
                        "localhost are always answered")
    p.set_defaults(func=cmd_serve)


def web_auth(args: argparse.Namespace) -> object:
    from kubestack_ai.web import WebAuth, WebError  # noqa: PLC0415

    try:
        auth = WebAuth.from_refs(token_ref=args.token_ref, user=args.user,
                                 password_ref=args.password_ref,
                                 metrics_token_ref=args.metrics_token_ref)
        auth.check_bind(args.host)
    except WebError as e:
        raise CliError(f"serve: {e}", 2) from None
    return auth


def cmd_serve(args: argparse.Namespace) -> int:
    from kubestack_ai.web import WebError, serve  # noqa: PLC0415
    from kubestack_ai.web.hosts import ENV as HOSTS_ENV  # noqa: PLC0415
    from kubestack_ai.web.hosts import AllowedHosts  # noqa: PLC0415

    auth = web_auth(args)
    hosts = AllowedHosts.parse(args.host, args.allowed_host, os.environ.get(HOSTS_ENV))
    store = open_store_when_up("ksa serve")  # storage down: serves 503s until it is back
    print(f"ksa serve: http://{args.host}:{args.port}/ (storage {store.masked_url})",
          file=sys.stderr, flush=True)
    try:
        from kubestack_ai.workers.settings import Settings  # noqa: PLC0415

        serve(store, args.host, args.port, auth, hosts,  # type: ignore[arg-type]
              home=Settings.from_env().home)
    except WebError as e:
        raise CliError(f"serve: {e}", 2) from None
    return 0
