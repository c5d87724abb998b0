"""SSH keys: type and size checked, fingerprint as ssh-keygen prints it, one per user."""

import base64
import hashlib
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from portal.models import SshKey
from tests.portal.factories import member

pytestmark = pytest.mark.django_db


def _openssh(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def _fingerprint(line: str) -> str:
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("make_key", "key_type", "bits"),
    [
        (ed25519.Ed25519PrivateKey.generate, "ssh-ed25519", 256),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ecdsa-sha2-nistp384", 384),
        (lambda: rsa.generate_private_key(65537, 3072), "ssh-rsa", 3072),
    ],
)
def test_given_a_good_key_with_a_comment_then_it_is_stored_with_its_fingerprint(
    client, make_key, key_type, bits
):
    user = member()
    client.force_login(user)
    line = _openssh(make_key())
    client.post("/account/ssh-keys/", {"name": "laptop", "public_key": f"{line} me@laptop\n"})
    key = SshKey.objects.get(user=user)
    assert (key.key_type, key.bits, key.public_key) == (key_type, bits, line)
    assert key.fingerprint == _fingerprint(line)
    assert key.fingerprint in client.get("/account/ssh-keys/").content.decode()


def test_the_fingerprint_matches_ssh_keygen(tmp_path):
    from portal.services.ssh_keys import ssh_key_parse

    line = _openssh(ed25519.Ed25519PrivateKey.generate())
    (tmp_path / "k.pub").write_text(line + "\n")
    printed = subprocess.run(
        ["ssh-keygen", "-lf", tmp_path / "k.pub"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert ssh_key_parse(line)[3] == printed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello", "Paste one public key line"),
        ("ssh-dss AAAAB3NzaC1kc3M= x", "Key type ssh-dss is not accepted"),
        ("ssh-ed25519 AAAAnotakey", "does not decode"),
        (None, "RSA keys need at least 3072 bits; this one has 2048"),
    ],
)
def test_given_a_bad_key_then_the_form_says_what_is_wrong_and_nothing_is_stored(
    client, text, message
):
    if text is None:
        text = _openssh(rsa.generate_private_key(65537, 2048))
    client.force_login(member())
    page = client.post("/account/ssh-keys/", {"name": "x", "public_key": text}).content.decode()
    assert message in page
    assert not SshKey.objects.exists()


def test_given_the_same_key_twice_then_the_second_is_refused(client):
    client.force_login(member())
    line = _openssh(ed25519.Ed25519PrivateKey.generate())
    client.post("/account/ssh-keys/", {"public_key": line})
    page = client.post("/account/ssh-keys/", {"public_key": line}).content.decode()
    assert "You already added this key" in page
    assert SshKey.objects.count() == 1


def test_given_another_users_key_when_deleting_it_then_404(client):
    owner, other = member(), member()
    client.force_login(other)
    client.post(
        "/account/ssh-keys/", {"public_key": _openssh(ed25519.Ed25519PrivateKey.generate())}
    )
    client.force_login(owner)
    assert client.post(f"/account/ssh-keys/{SshKey.objects.get().pk}/delete/").status_code == 404
    assert SshKey.objects.count() == 1
