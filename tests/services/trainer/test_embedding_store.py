import numpy as np
import pytest

from services.trainer.embedding_store import EmbeddingStore


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:063d}" for i in range(n)]


def test_put_get_missing_and_reload(tmp_path):
    store = EmbeddingStore(tmp_path, "bb-1", 8)
    ids = _ids("a", 5)
    emb = np.arange(40, dtype=np.float32).reshape(5, 8)
    store.put(ids, emb)
    assert store.missing(ids + ["z" * 64]) == ["z" * 64]
    np.testing.assert_array_equal(store.get([ids[3], ids[1]]), emb[[3, 1]])
    fresh = EmbeddingStore(tmp_path, "bb-1", 8)  # another process / a restart
    assert len(fresh) == 5
    np.testing.assert_array_equal(fresh.get(ids), emb)
    assert len(EmbeddingStore(tmp_path, "bb-2", 8)) == 0  # keyed by backbone id


def test_known_ids_are_not_rewritten(tmp_path):
    store = EmbeddingStore(tmp_path, "bb", 4)
    ids = _ids("a", 3)
    store.put(ids, np.ones((3, 4), np.float32))
    assert store.put(ids, np.zeros((3, 4), np.float32)) is None
    store.put(ids[:1] + _ids("b", 1), np.full((2, 4), 7, np.float32))
    np.testing.assert_array_equal(store.get(ids[:1]), np.ones((1, 4)))
    np.testing.assert_array_equal(store.get(_ids("b", 1)), np.full((1, 4), 7))
    assert store.shard_count() == 2


def test_compaction_keeps_every_row(tmp_path):
    store = EmbeddingStore(tmp_path, "bb", 3, max_shards=4)
    expected = {}
    for k in range(9):
        ids = _ids(f"{k}", 2)
        emb = np.random.default_rng(k).normal(size=(2, 3)).astype(np.float32)
        store.put(ids, emb)
        expected.update(dict(zip(ids, emb)))
    assert store.shard_count() <= 4
    fresh = EmbeddingStore(tmp_path, "bb", 3)
    assert len(fresh) == 18
    for tid, row in expected.items():
        np.testing.assert_array_equal(fresh.get([tid])[0], row)
    assert not list((tmp_path / "bb").glob(".*tmp"))


def test_errors_are_clear(tmp_path):
    store = EmbeddingStore(tmp_path, "bb", 4)
    with pytest.raises(ValueError, match="embeddings must be"):
        store.put(_ids("a", 2), np.zeros((2, 5), np.float32))
    with pytest.raises(KeyError, match="no embedding for tile"):
        store.get(["x" * 64])
