"""API keys: created once, stored as hashes, roles parsed strictly, revocation seen at once."""

from __future__ import annotations

import json
import multiprocessing as mp
import stat

import pytest

from serving.records.keys import (
    KeyStore,
    KeyStoreError,
    Principal,
    Role,
    RoleError,
    hash_key,
    parse_bearer,
    parse_role,
    split_key,
)


@pytest.fixture
def store(tmp_path) -> KeyStore:
    return KeyStore(tmp_path / "keys" / "keys.json")


def test_create_then_authenticate(store):
    key_id, secret = store.create("crm", label="crm-prod")
    assert secret.startswith(f"kw_{key_id}_") and len(secret) >= 3 + 12 + 1 + 43
    assert split_key(secret) == key_id
    assert store.authenticate(secret) == Principal(key_id=key_id, role="crm", rm_id=None)
    [info] = store.list()
    assert (info.key_id, info.role, info.label, info.active) == (key_id, "crm", "crm-prod", True)


def test_each_key_is_new(store):
    keys = [store.create("crm") for _ in range(5)]
    assert len({k for k, _ in keys}) == 5 and len({s for _, s in keys}) == 5


def test_the_file_holds_hashes_never_secrets(store):
    secrets_ = [store.create(role)[1] for role in ("crm", "admin", "rm:RM00007")]
    raw = store.path.read_bytes()
    for secret in secrets_:
        token = secret.split("_", 2)[2]
        assert secret.encode() not in raw and token.encode() not in raw
        assert hash_key(secret).encode() in raw
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    listed = json.dumps([vars(i) for i in store.list()])
    assert "hash" not in listed and all(s not in listed for s in secrets_)


@pytest.mark.parametrize(
    "attempt",
    [
        lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),  # last character changed
        lambda s: s + "x",
        lambda s: s.replace("kw_", "kx_", 1),
        lambda s: "kw_000000000000_" + s.split("_", 2)[2],  # right token, unknown id
        lambda s: "",
        lambda s: "Bearer " + s,
        lambda s: s.upper(),
        lambda s: s * 20,  # too long to be a key
    ],
)
def test_wrong_keys_fail(store, attempt):
    _, secret = store.create("crm")
    assert store.authenticate(attempt(secret)) is None
    assert store.authenticate(None) is None


def test_another_keys_secret_with_this_id_fails(store):
    key_a, _ = store.create("crm")
    _, secret_b = store.create("admin")
    forged = f"kw_{key_a}_" + secret_b.split("_", 2)[2]
    assert store.authenticate(forged) is None


def test_revoked_key_fails_even_for_a_store_opened_before(store):
    reader = KeyStore(store.path)  # like a service worker that loaded the file earlier
    key_id, secret = store.create("rm:RM1")
    other_id, other = store.create("crm")
    assert reader.authenticate(secret) is not None
    info = store.revoke(key_id)
    assert not info.active and info.revoked_at is not None
    assert reader.authenticate(secret) is None
    assert store.authenticate(secret) is None
    assert reader.authenticate(other) == Principal(other_id, "crm")
    assert store.revoke(key_id).revoked_at == info.revoked_at  # idempotent


def test_revoking_an_unknown_key_names_it(store):
    store.create("crm")
    with pytest.raises(KeyStoreError, match="no key 'nope'"):
        store.revoke("nope")


def test_an_empty_store_authenticates_nobody(store):
    assert store.list() == []
    assert store.authenticate("kw_0123456789ab_whatever") is None


def test_a_corrupt_store_is_an_error_naming_the_file(store):
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{not json")
    with pytest.raises(KeyStoreError, match=str(store.path)):
        store.authenticate("kw_0123456789ab_whatever")
    store.path.write_text('{"keys": []}')
    with pytest.raises(KeyStoreError, match="not a Keepwell key store"):
        store.list()


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("crm", Role("crm")),
        ("admin", Role("admin")),
        ("rm:RM00001", Role("rm", "RM00001")),
        ("rm:a.b-c_d:1", Role("rm", "a.b-c_d:1")),
    ],
)
def test_roles_parse(text, role):
    assert parse_role(text) == role
    assert str(role) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rm:", "needs an RM id"),
        ("rm", "unknown role"),
        ("CRM", "lower case"),
        (" crm", "lower case"),
        ("rm:RM 1", "the RM id must be"),
        ("rm:" + "x" * 65, "the RM id must be"),
        ("superuser", "roles are crm, admin or rm:<rm_id>"),
        ("", "unknown role"),
    ],
)
def test_bad_roles_are_explained(store, text, message):
    with pytest.raises(RoleError, match=message):
        parse_role(text)
    with pytest.raises(RoleError):
        store.create(text)
    assert store.list() == []


def test_label_must_not_look_like_free_text(store):
    with pytest.raises(ValueError, match="label"):
        store.create("crm", label="x" * 81)
    with pytest.raises(ValueError, match="label"):
        store.create("crm", label="ann@bank.example")


def test_rm_principal_scores_only_its_own_customers(store):
    _, rm_key = store.create("rm:RM7")
    _, crm_key = store.create("crm")
    _, admin_key = store.create("admin")
    rm, crm, admin = (store.authenticate(k) for k in (rm_key, crm_key, admin_key))
    assert rm.rm_id == "RM7" and rm.kind == "rm" and not rm.is_admin
    assert rm.can_score("RM7")
    assert not rm.can_score("RM70") and not rm.can_score("RM") and not rm.can_score(None)
    assert crm.can_score("RM1") and crm.can_score(None) and not crm.is_admin
    assert admin.is_admin and admin.can_score("RM1")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer kw_abc_def", "kw_abc_def"),
        ("bearer kw_abc_def", "kw_abc_def"),
        ("  Bearer   kw_abc_def  ", "kw_abc_def"),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer", None),
        ("Bearer a b", None),
        ("kw_abc_def", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_bearer(header, expected):
    assert parse_bearer(header) == expected


def _create_keys(path, n, queue):
    store = KeyStore(path)
    queue.put([store.create("crm")[0] for _ in range(n)])


def test_concurrent_creates_lose_no_key(tmp_path):
    path = tmp_path / "keys.json"
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_create_keys, args=(path, 15, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    created = [k for _ in procs for k in queue.get(timeout=60)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(i.key_id for i in KeyStore(path).list()) == sorted(created)
    assert len(created) == 45


# -- the `keepwell keys` command bodies --------------------------------------------------------


def _consoles():
    from rich.console import Console

    out = Console(record=True, width=200, force_terminal=False)
    err = Console(record=True, width=200, force_terminal=False)
    return out, err


def test_keys_commands_print_the_key_once(tmp_path):
    from cli.record_commands import keys_create, keys_list, keys_revoke

    path = tmp_path / "keys.json"
    out, err = _consoles()
    key_id = keys_create(path, "rm:RM3", "branch-crm", out, err)
    [secret] = out.export_text().split()  # stdout holds the key and nothing else
    assert KeyStore(path).authenticate(secret).rm_id == "RM3"
    assert "will not be shown again" in err.export_text() and secret not in err.export_text()

    keys_list(path, out)
    listing = out.export_text()
    assert key_id in listing and "rm:RM3" in listing and "branch-crm" in listing
    assert secret not in listing and hash_key(secret) not in listing

    keys_revoke(path, key_id, out)
    assert f"Revoked key {key_id}" in out.export_text()
    keys_revoke(path, key_id, out)
    assert "already revoked" in out.export_text()
    assert KeyStore(path).authenticate(secret) is None


def test_keys_create_refuses_a_bad_role_without_writing(tmp_path):
    from cli.record_commands import CLI_ERRORS, keys_create

    out, _ = _consoles()
    with pytest.raises(CLI_ERRORS, match="needs an RM id"):
        keys_create(tmp_path / "keys.json", "rm:", None, out)
    assert out.export_text() == "" and not (tmp_path / "keys.json").exists()
