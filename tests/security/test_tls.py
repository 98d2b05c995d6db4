"""forgeml serve over TLS: a self-signed certificate, a real server process, a real client that
trusts the certificate; a client that does not is refused, plain HTTP gets no answer."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import lightgbm as lgb
import pandas as pd
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import forgeml as fm
from forgeml.config import Settings
from forgeml.store import Workspace


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_over_tls_with_a_self_signed_certificate(
    tmp_path: Path, adult_numeric: pd.DataFrame
) -> None:
    home = tmp_path / "ws"
    with Workspace(Settings(home=home)) as ws:
        X, y = adult_numeric.drop(columns=["income"]), adult_numeric["income"]
        model = lgb.LGBMClassifier(n_estimators=10, num_leaves=7, random_state=0, verbose=-1)
        fm.register(model.fit(X, y), name="adult-gbm", sample=X, workspace=ws, actor="setup")
    cert, key = self_signed(tmp_path)
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEML_")}
    env["FORGEML_HOME"] = str(home)
    command = [sys.executable, "-m", "forgeml", "serve", "adult-gbm@1", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--tls-cert", str(cert), "--tls-key", str(key), "--no-access-log"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    trusted = ssl.create_default_context(cafile=str(cert))
    base = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.communicate()[1]
            try:
                if httpx.get(f"{base}/health/ready", verify=trusted).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        row = X.iloc[:2].to_dict(orient="records")
        answer = httpx.post(
            f"{base}/v1/models/adult-gbm/predict", json={"records": row}, verify=trusted
        )
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{base}/health/live")  # the system's trust store does not know it
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/health/live")  # no plain HTTP
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=60)
    assert f"listening on https://127.0.0.1:{port}" in out


def test_tls_options_are_checked(tmp_path: Path) -> None:
    from forgeml.errors import InputError
    from forgeml.http._server import _tls
    from forgeml.serve import ServeOptions

    with pytest.raises(ValueError, match="both the certificate and its key"):
        ServeOptions(models=("m@1",), tls_certfile="c.pem")
    cert, key = self_signed(tmp_path)
    assert _tls(ServeOptions(models=("m@1",))) == {}
    assert _tls(ServeOptions(models=("m@1",), tls_certfile=str(cert), tls_keyfile=str(key)))
    with pytest.raises(InputError, match="no file"):
        _tls(ServeOptions(models=("m@1",), tls_certfile=str(tmp_path / "x"), tls_keyfile=str(key)))
    with pytest.raises(InputError, match="are not a PEM certificate and its key"):
        _tls(ServeOptions(models=("m@1",), tls_certfile=str(key), tls_keyfile=str(key)))
