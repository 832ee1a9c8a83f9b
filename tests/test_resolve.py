"""How `kb related` / `kb show` / `kb mark` turn a name into a paper, on the user's real library."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.resolve import ResolveError, norm, resolve_paper
from kb.storage import store
from tests.conftest import USERLIB

WAV2LIP = "a-lip-sync-expert-is-all-you-need-for-speech-to"


@pytest.fixture(scope="module")
def gen(userlib_index: Path) -> store.Generation:
    return store.Generation(userlib_index)


@pytest.mark.parametrize(
    ("query", "paper_id", "method"),
    [
        ("StyleGAN", "stylegan", "alias"),
        ("stylegan", "stylegan", "alias"),
        ("Pix2PixGAN", "pix2pixgan", "alias"),
        ("pix2pix-gan", "pix2pixgan", "alias"),
        ("SyncNet", "syncnet", "alias"),
        ("Analyzing and improving the image quality of StyleGAN", "stylegan2", "title"),
        ("out of time: automated lip-sync in the wild", "syncnet", "title"),
        ("interfacegan", "interfacegan", "alias"),
        (WAV2LIP, WAV2LIP, "id"),
        ("StyleGAN2.pdf", "stylegan2", "file"),
        ("X2Face.pdf", "x2face-a-network-for-controlling-face-generation", "file"),
        ("Interpretng the latent space of GANs for semantic face edting", "interfacegan", "fuzzy-title"),
        ("Wav2Lip", WAV2LIP, "mention"),
        ("LipGAN", "towards-automatic-face-to-face-translation", "mention"),
    ],
)
def test_resolves(gen: store.Generation, query: str, paper_id: str, method: str) -> None:
    res = resolve_paper(gen, query)
    assert (res.paper.id, res.method) == (paper_id, method)
    assert 0 < res.score <= 1


def test_a_translation_file_resolves_to_its_paper(gen: store.Generation) -> None:
    res = resolve_paper(gen, str(USERLIB / "paper" / "stylegan2_chs.pdf"))
    assert (res.paper.id, res.method) == ("stylegan2", "file")
    assert resolve_paper(gen, "stylegan2_chs").paper.id == "stylegan2"


def test_part_of_a_title_lists_the_other_equal_matches(gen: store.Generation) -> None:
    res = resolve_paper(gen, "talking face generation")
    assert res.method == "title"
    assert "talking face generation" in norm(res.paper.title)
    assert res.others and all("talking face generation" in norm(p.title) for p in res.others)
    assert res.paper.id not in {p.id for p in res.others}


def test_nothing_matches_suggests_closest_titles(gen: store.Generation) -> None:
    with pytest.raises(ResolveError) as info:
        resolve_paper(gen, "StyleGNN-zzz-qqq-unrelated")
    assert "no paper matches" in str(info.value)
    assert "closest titles" in str(info.value)


def test_stop_words_alone_name_no_paper(gen: store.Generation) -> None:
    with pytest.raises(ResolveError):
        resolve_paper(gen, "the")


def test_empty_query_is_an_error(gen: store.Generation) -> None:
    with pytest.raises(ResolveError):
        resolve_paper(gen, "  ?! ")
