"""Native TLS and mutual TLS, with a throwaway CA made here; the project's own client."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import close, free_port, spawn, wait_ready

from .certificates import Authority

ROW = ["--features", "5.1,3.5,1.4,0.2", "--output", "json"]


@contextlib.contextmanager
def https_server(*args: str, ca: Path, client: tuple[Path, Path] | None = None) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "restpredict", "serve", *args, "--port", str(port)]
    server = spawn(command, f"https://127.0.0.1:{port}")
    context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(*map(str, client))
    try:
        wait_ready(server, verify=context)
        yield server.url
    finally:
        close(server)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RESTPREDICT_")}
    command = [sys.executable, "-m", "restpredict", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=clean)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("pki")
    ca, stranger = Authority(directory, "test-ca"), Authority(directory, "other-ca")
    server_cert, server_key = ca.issue("server", server=True)
    old_cert, old_key = ca.issue("expired", server=True, expired=True)
    client_cert, client_key = ca.issue("client", server=False)
    return {
        "ca": ca.pem, "other_ca": stranger.pem,
        "server_cert": server_cert, "server_key": server_key,
        "expired_cert": old_cert, "expired_key": old_key,
        "client_cert": client_cert, "client_key": client_key,
    }  # fmt: skip


def test_https_answers_and_a_wrong_ca_is_refused(pki: dict[str, Path]) -> None:
    tls = ["--tls-cert", str(pki["server_cert"]), "--tls-key", str(pki["server_key"])]
    with https_server(*tls, ca=pki["ca"]) as url:
        good = _cli("predict", "--url", url, "--ca-cert", str(pki["ca"]), *ROW)
        assert good.returncode == 0, good.stderr
        assert json.loads(good.stdout) == {"prediction": "setosa"}
        wrong = _cli("predict", "--url", url, "--ca-cert", str(pki["other_ca"]), *ROW)
        assert wrong.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in wrong.stderr
        assert "Traceback" not in wrong.stderr


def test_an_expired_certificate_is_refused(pki: dict[str, Path]) -> None:
    tls = ["--tls-cert", str(pki["expired_cert"]), "--tls-key", str(pki["expired_key"])]
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "restpredict", "serve", *tls, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # up: a TCP connection is accepted
            result = _cli("predict", "--url", url, "--ca-cert", str(pki["ca"]), *ROW)
            if "expired" in result.stderr or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert result.returncode != 0 and "certificate has expired" in result.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_mutual_tls_refuses_a_client_without_a_certificate(pki: dict[str, Path]) -> None:
    tls = [
        "--tls-cert", str(pki["server_cert"]), "--tls-key", str(pki["server_key"]),
        "--tls-client-ca", str(pki["ca"]),
    ]  # fmt: skip
    mine = (pki["client_cert"], pki["client_key"])
    with https_server(*tls, ca=pki["ca"], client=mine) as url:
        anonymous = _cli("predict", "--url", url, "--ca-cert", str(pki["ca"]), *ROW)
        assert anonymous.returncode != 0 and "Traceback" not in anonymous.stderr
        known = _cli(
            "predict", "--url", url, "--ca-cert", str(pki["ca"]),
            "--client-cert", str(mine[0]), "--client-key", str(mine[1]), *ROW,
        )  # fmt: skip
        assert known.returncode == 0, known.stderr
        assert json.loads(known.stdout) == {"prediction": "setosa"}
