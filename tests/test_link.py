"""Linking PDFs to catalog entries, measured on the real libraries and on small made-up cases.

The real mappings below were checked by hand against the file names and the README lines.
Paths in the unit cases need not exist: linking never opens a file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPUS, PWL, USERLIB

from kb.catalog import parse_catalog
from kb.link import THRESHOLD, LinkDecision, PdfCandidate, link_pdfs, name_key
from kb.models import Entry, Link, PdfMeta

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not available")

# file in userlib/paper -> (title of the expected entry or None, method, attachment)
USERLIB_EXPECTED: dict[str, tuple[str | None, str, bool]] = {
    "A Survey on Visual Transformer.pdf": ("A Survey on Visual Transformer", "pdf-link", False),
    "APB2FACEV2.pdf": ("APB2FACEV2: Real-time audio-guided multi-face reenactment", "pdf-link", False),
    "A_Lip_Sync_Expert_Is_All_You_Need_for_Speech_to_Lip_Generation_In_The_Wild.pdf": (
        "A Lip Sync Expert Is All You Need for Speech to Lip Generation In The Wild",
        "pdf-link",
        False,
    ),
    "Acoustic_Emotion_Recognition_A_Benchmark_Comparison_of_Performances.pdf": (
        "Acoustic Emotion Recognition: A Benchmark Comparison of Performances",
        "pdf-link",
        False,
    ),
    "Anomaly_Detection_in_Video_Sequence_with_Appearance_Motion_Correspondence.pdf": (
        "Anomaly Detection in Video Sequence with Appearance-Motion Correspondence",
        "pdf-link",
        False,
    ),
    "FAN.pdf": ("Frame Attention Networks for Facial Expression Recognition in Videos", "pdf-link", False),
    "FSGAN_Subject_Agnostic_Face_Swapping_and_Reenactment.pdf": (
        "FSGAN: Subject agnostic face swapping and reenactment",
        "pdf-link",
        False,
    ),
    "Facial_Emotion_Recognition_Using_Computer_Vision.pdf.pdf": (
        "Facial Emotion Recognition Using Computer Vision",
        "pdf-link",
        False,
    ),
    "GANimation.pdf": (
        "GANimation: Anatomically-aware Facial Animation from a Single Image",
        "pdf-link",
        False,
    ),
    "Hierarchical_Cross_Modal_Talking_Face_Generation_with_Dynamic_Pixel_Wise_Loss.pdf": (
        "Hierarchical Cross-Modal Talking Face Generation with Dynamic Pixel-Wise Loss",
        "pdf-link",
        False,
    ),
    "InterFaceGAN.pdf": (
        "Interpreting the Latent Space of GANs for Semantic Face Editing",
        "pdf-link",
        False,
    ),
    "LandmarkGAN.pdf": ("LandmarkGAN: Synthesizing Faces from Landmarks", "pdf-link", False),
    "M3ER- Multiplicative Multimodal Emotion Recognition using Facial, Textual, and Speech Cues.pdf": (
        "M3ER: Multiplicative Multimodal Emotion Recognition using Facial, Textual, and Speech Cues",
        "name",
        False,
    ),
    "ObamaNet.pdf": ("ObamaNet: Photo-realistic lip-sync from text", "pdf-link", False),
    "Speech_Emotion_Recognition_using_Convolutional_and_Recurrent_Neural_Networks.pdf": (
        "Speech Emotion Recognition using Convolutional and Recurrent Neural Networks",
        "pdf-link",
        False,
    ),
    "Speech_driven_Facial_Animation_using_Cascaded_GANs_for_Learning_of_Motion_and_Texture.pdf": (
        "Speech-driven Facial Animation using Cascaded GANs for Learning of Motion and Texture",
        "pdf-link",
        False,
    ),
    "StyleGAN2.pdf": ("Analyzing and Improving the Image Quality of StyleGAN", "pdf-link", False),
    "Style_Transfer_for_Co_Speech_Gesture_Animation_A_Multi_Speaker_Conditional_Mixture_Approach.pdf": (
        "Style Transfer for Co-Speech Gesture Animation: A Multi-Speaker Conditional-Mixture Approach",
        "pdf-link",
        False,
    ),
    "SyncNet.pdf": ("Out of Time: Automated Lip Sync in the Wild", "pdf-link", False),
    "Talking_Face_Generation_by_Adversarially_Disentangled_Audio_Visual_Representation.pdf": (
        "Talking Face Generation by Adversarially Disentangled Audio-Visual Representation",
        "pdf-link",
        False,
    ),
    "Towards_Automatic_Face_to_Face_Translation.pdf": (
        "Towards Automatic Face-to-Face Translation",
        "pdf-link",
        False,
    ),
    "Towards_Discriminative_Representation_Learning_for_Speech_Emotion_Recognition.pdf": (
        "Towards Discriminative Representation Learning for Speech Emotion Recognition",
        "pdf-link",
        False,
    ),
    "X2Face.pdf": (
        "X2face: A network for controlling face generation using images, audio, and pose codes",
        "pdf-link",
        False,
    ),
    # the Chinese translation hangs off StyleGAN2's [[翻译]] link
    "stylegan2_chs.pdf": ("Analyzing and Improving the Image Quality of StyleGAN", "other-link", True),
    # the CCF ranking list is linked from a paragraph, not a paper entry
    "中国计算机学会推荐国际学术会议和期刊目录-2019.pdf": (None, "none", False),
}

# path under pwl-dev -> title of the expected entry (in the README of the same folder) or None
PWL_EXPECTED: dict[str, str | None] = {
    "caching/2q-a-low-overhead-high-performance-buffer-management-replacement-algorithm.pdf": (
        "2Q: A Low Overhead High Performance Buffer Management Replacement Algorithm"
    ),
    "caching/a-constant-algorithm-for-implementing-the-lfu-cache-eviction-scheme.pdf": (
        "An O(1) algorithm for implementing the LFU cache eviction scheme"
    ),
    "caching/a-program-optimization-for-automatic-database-result-caching.pdf": (
        "A Program Optimization for Automatic Database Result Caching"
    ),
    "data_structures/b-trees-write-optimization.pdf": "An Introduction to Bε-trees and Write-Optimization",
    "data_structures/epidemic-broadcast-trees.pdf": "Epidemic Broadcast Trees",
    "data_structures/ideal-hash-trees.pdf": "Ideal Hash Trees",
    "data_structures/lca-revisited.pdf": "The Least Common Ancestor Problem revisited",
    "data_structures/level-ancestor-simplified.pdf": "The Level Ancestor Problem simplifed",
    "datastores/bigtable-a-distributed-storage-system-for-structured-data.pdf": (
        "Bigtable: A Distributed Storage System for Structured Data"
    ),
    "datastores/database-metatheory--asking-the-big-queries.pdf": "Database Metatheory: Asking Big Queries",
    "datastores/dynamo-amazons-highly-available-key-value-store.pdf": (
        "Dynamo: Amazon\u2019s Highly Available Key-value Store"
    ),
    "datastores/elle-inferring-isolation-anomalies-from-experimental-observations.pdf": (
        "Elle: Inferring Isolation Anomalies from Experimental Observations"
    ),
    "datastores/flat-datacenter-storage.pdf": "Flat Datacenter Storage",
    "datastores/freenet-a-distributed-anonymous-information-and-retrieval-system.pdf": (
        "Freenet: A Distributed Anonymous Information Storage and Retrieval System"
    ),
    "datastores/megastore-providing-scalable-highly-available-storage-for-interactive-services.pdf": (
        "Megastore: Providing Scalable, Highly Available Storage for Interactive Services"
    ),
    "datastores/network-challenges-of-data-recovery-in-erasure-coded-distributed-storage-systems.pdf": (
        "A Solution to the Network Challenges of Data Recovery in Erasure-coded Distributed Storage "
        "Systems: A Study on the Facebook Warehouse Cluster"
    ),
    "datastores/rados-a-scalable-reliable-storage-service-for-petabyte-scale-storage-clusters.pdf": (
        "RADOS: A Scalable, Reliable Storage Service for Petabyte-scale Storage Clusters"
    ),
    "datastores/spanner-google's-globally-distributed-database.pdf": (
        "Spanner: Google\u2019s Globally-Distributed Database"
    ),
    "datastores/spartan-a-distributed-array-framework-with-smart-tiling.pdf": (
        "Spartan: A distributed array framework with smart tiling"
    ),
    "datastores/stasis-flexible-transactional-storage.pdf": "Stasis: Flexible Transactional Storage",
    "datastores/tao-facebook-distributed-datastore.pdf": (
        "TAO: Facebooks Distributed Data Store for the Social Graph'"
    ),
    "datastores/the-google-file-system.pdf": "The Google File System",
    "datastores/transactional-storage-for-geo-replicated-systems.pdf": (
        "Transactional storage for geo-replicated systems"
    ),
    "datastores/warp-multi-key-transactions-for-key-value-stores.pdf": (
        "Warp: Multi-Key Transactions for Key-Value Stores"
    ),
    "digital_currency/bitcoin.pdf": "Bitcoin",
    "digital_currency/peercoin.pdf": "PeerCoin",
    "digital_currency/primecoin.pdf": "PrimeCoin",
    "garbage_collection/parallel_generational_copying_garbage_collection_with_a_block_structured_heap.pdf": (
        "Parallel Generational-Copying Garbage Collection with a Block-Structured Heap"
    ),
    "garbage_collection/the_lisp_ii_garbage_collector.pdf": "The Lisp II Garbage Collector",
    "information_retrieval/authoritative-sources-in-a-hyperlinked-environment.pdf": (
        "Authoritative Sources in a Hyperlinked Environment"
    ),
    "information_retrieval/graph_of_word_and_tw_idf.pdf": "Graph of Word and TW-IDF",
    "information_retrieval/okapi-at-trec3.pdf": "Okapi at TREC3",
    "information_retrieval/the-pagerank-citation-ranking-bringing-order-to-the-web.pdf": (
        "The PageRank Citation Ranking: Bringing Order to the Web"
    ),
    # the README links these two to external copies only: matched by file name similarity
    "operating_systems/jails-confining-the-omnipotent-root..pdf": "Jails: Confining the omnipotent root",
    "operating_systems/solaris-zones-operating-system-support-for-consolidating-commercial-workloads.pdf": (
        "Solaris Zones: Operating System Support for Consolidating Commercial Workloads"
    ),
    "operating_systems/therac.pdf": None,  # in the folder but not in its README
    "operating_systems/unix-time-sharing-system.pdf": "The UNIX Time-Sharing System",
    "pattern_matching/aho-corasick-string-matching.pdf": (
        "Efficient String Matching: An Aid to Bibliographic Search"
    ),
    "pattern_matching/compiling-pattern-matching-to-good-decision-trees.pdf": (
        "Compiling Pattern Matching to good Decision Trees"
    ),
    "pattern_matching/extensible-pattern-matching-extensible-language.pdf": (
        "Extensible Pattern Matching in an Extensible Language"
    ),
    "pattern_matching/warnings-for-pattern-matching.pdf": "Warnings for pattern matching",
    "quantum_computing/advance_in_quantum_machine_learning.pdf": "Advances in quantum machine learning",
    "quantum_computing/grovers_algorithm.pdf": "A fast quantum mechanical algorithm for database search",
    "quantum_computing/shors_algorithm.pdf": (
        "Polynomial-Time Algorithms for Prime Factorization and Discrete Logarithms on a Quantum Computer"
    ),
    "security/ids-evasion-ptacek-newsham.pdf": (
        "Insertion, Evasion, and Denial of Service: eluding network intrusion detection"
    ),
    "security/macaroons-cookies-with-contextual-caveats.pdf": (
        "Macaroons: Cookies with Contextual Caveats for Decentralized Authorization in the Cloud"
    ),
    "security/sok-eternal-war-in-memory.pdf": "SoK: Eternal War in Memory",
    # linked through the GitHub copy in the title link, whose file name is the local file's
    "sublinear_algorithms/1985-Flajolet-Probabilistic-counting.pdf": (
        "Probablistic Counting Algorithms for Database Applications"
    ),
    "sublinear_algorithms/An-Elementary-Proof-of-a-Theorem-of-Johnson-and-Lindenstrauss.pdf": (
        "An Elementary Proof of a Theorem of Johnson and Lindenstrauss"
    ),
}


def _entry(title: str, catalog: str = "/lib/README.md", **kw: object) -> Entry:
    return Entry(title=title, catalog=catalog, line=1, **kw)  # type: ignore[arg-type]


def _one(decisions: list[LinkDecision], name: str) -> LinkDecision:
    found = [d for d in decisions if d.pdf.name == name]
    assert len(found) == 1
    return found[0]


# ---------------------------------------------------------------------------------------------------
# Real libraries


@needs_corpus
def test_userlib_mapping() -> None:
    entries = parse_catalog(USERLIB / "README.md").entries
    pdfs = [PdfCandidate(p) for p in sorted((USERLIB / "paper").glob("*.pdf"))]
    assert len(pdfs) == 25
    decisions = link_pdfs(entries, pdfs, [USERLIB])
    assert [d.pdf for d in decisions] == [p.path for p in pdfs]
    actual = {
        d.pdf.name: (
            entries[d.entry_index].title if d.entry_index is not None else None,
            d.method,
            d.attachment,
        )
        for d in decisions
    }
    assert actual == USERLIB_EXPECTED
    assert not any(d.unsure for d in decisions if d.entry_index is not None)


@needs_corpus
def test_pwl_mapping() -> None:
    entries = [e for p in sorted(PWL.glob("*/README.md")) for e in parse_catalog(p).entries]
    pdfs = [PdfCandidate(p) for p in sorted(PWL.rglob("*.pdf"))]
    assert len(pdfs) == 49
    decisions = link_pdfs(entries, pdfs, [PWL])
    actual = {}
    for d in decisions:
        rel = d.pdf.relative_to(PWL).as_posix()
        entry = entries[d.entry_index] if d.entry_index is not None else None
        if entry is not None:  # never an entry of another folder's catalog
            assert Path(entry.catalog).parent.name == rel.split("/")[0]
        actual[rel] = entry.title if entry else None
    assert actual == PWL_EXPECTED


@needs_corpus
def test_userlib_without_links_still_mostly_links_by_name() -> None:
    """With every link removed, file-name similarity alone must not link anything wrongly."""
    entries = parse_catalog(USERLIB / "README.md").entries
    for e in entries:
        e.links = []
    pdfs = [PdfCandidate(p) for p in sorted((USERLIB / "paper").glob("*.pdf"))]
    decisions = link_pdfs(entries, pdfs, [USERLIB])
    right = wrong = 0
    for d in decisions:
        if d.entry_index is None:
            continue
        expected = USERLIB_EXPECTED[d.pdf.name][0]
        if entries[d.entry_index].title == expected:
            right += 1
        else:
            wrong += 1
    assert wrong == 0
    assert right >= 20  # FAN.pdf and the translation cannot be told by name alone


# ---------------------------------------------------------------------------------------------------
# Unit cases


def test_name_key() -> None:
    assert name_key("Facial_Emotion_Recognition.pdf.pdf") == "facial emotion recognition"
    assert name_key("./paper/My%20Paper-Title.PDF") == "my paper title"
    assert name_key("jails-confining-the-omnipotent-root..pdf") == "jails confining the omnipotent root"


def test_pdf_link_url_decoded_spaces_underscores_and_case() -> None:
    entries = [_entry("Some Paper", links=[Link("PDF", "./Paper/My%20Great-paper.pdf")])]
    pdfs = [PdfCandidate(Path("/lib/paper/my_great_paper.pdf"))]
    [d] = link_pdfs(entries, pdfs, [Path("/lib")])
    assert (d.entry_index, d.method, d.score, d.unsure, d.attachment) == (0, "pdf-link", 1.0, False, False)


def test_pdf_link_relative_to_library_root_and_its_parent() -> None:
    entries = [
        _entry("A", catalog="/home/u/notes/README.md", links=[Link("PDF", "papers/a.pdf")]),
        _entry("B", catalog="/home/u/notes/README.md", links=[Link("PDF", "lib/b.pdf")]),
    ]
    pdfs = [PdfCandidate(Path("/home/u/lib/papers/a.pdf")), PdfCandidate(Path("/home/u/lib/b.pdf"))]
    decisions = link_pdfs(entries, pdfs, [Path("/home/u/lib")])
    assert [(d.entry_index, d.method) for d in decisions] == [(0, "pdf-link"), (1, "pdf-link")]


def test_pdf_link_same_file_name_elsewhere() -> None:
    entries = [_entry("A", links=[Link("PDF", "./moved/away/x-paper.pdf")])]
    [d] = link_pdfs(entries, [PdfCandidate(Path("/lib/other/x_paper.pdf"))], [Path("/lib")])
    assert (d.entry_index, d.method) == (0, "pdf-link") and d.score < 1.0


def test_translation_is_an_attachment_and_title_link_is_not() -> None:
    entries = [
        _entry(
            "Analyzing and Improving",
            alias="StyleGAN2",
            links=[Link("PDF", "./paper/StyleGAN2.pdf"), Link("翻译", "http://x.com/pdf/stylegan2_chs.pdf")],
        ),
        _entry("Counting", links=[Link("paper", "https://github.com/o/r/blob/main/1985-counting.pdf")]),
    ]
    pdfs = [
        PdfCandidate(Path("/lib/paper/StyleGAN2.pdf")),
        PdfCandidate(Path("/lib/paper/stylegan2_chs.pdf")),
        PdfCandidate(Path("/lib/paper/1985-counting.pdf")),
    ]
    d = link_pdfs(entries, pdfs, [Path("/lib")])
    assert [(x.entry_index, x.method, x.attachment) for x in d] == [
        (0, "pdf-link", False),
        (0, "other-link", True),
        (1, "other-link", False),
    ]


def test_title_from_pdf_metadata() -> None:
    entries = [
        _entry("Frame Attention Networks for Facial Expression Recognition in Videos"),
        _entry("Something Else Entirely Different"),
    ]
    meta = PdfMeta(title="Frame Attention Networks for Facial Expression Recognition in Videos")
    decisions = link_pdfs(entries, [PdfCandidate(Path("/lib/FAN.pdf"), meta)], [Path("/lib")])
    assert (decisions[0].entry_index, decisions[0].method) == (0, "title")
    # a useless metadata title says nothing
    junk = PdfMeta(title="untitled", first_page_title="Microsoft Word - draft3.docx")
    decisions = link_pdfs(entries, [PdfCandidate(Path("/lib/FAN.pdf"), junk)], [Path("/lib")])
    assert decisions[0].entry_index is None and decisions[0].method == "none"


def test_similarity_is_one_to_one_best_first() -> None:
    entries = [_entry("Deep Residual Learning for Image Recognition")]
    pdfs = [
        PdfCandidate(Path("/lib/deep_residual_learning_for_image_recognition_v2.pdf")),
        PdfCandidate(Path("/lib/Deep_Residual_Learning_for_Image_Recognition.pdf")),
    ]
    d = link_pdfs(entries, pdfs, [Path("/lib")])
    assert (d[1].entry_index, d[1].method, d[1].score) == (0, "name", 1.0)
    assert d[0].entry_index is None and d[0].unsure  # a close second is flagged for a look


def test_short_name_and_alias() -> None:
    entries = [
        _entry("GANimation: Anatomically-aware Facial Animation from a Single Image"),
        _entry("Out of Time: Automated Lip Sync in the Wild", alias="SyncNet"),
    ]
    pdfs = [PdfCandidate(Path("/lib/SyncNet.pdf")), PdfCandidate(Path("/lib/GANimation.pdf"))]
    d = link_pdfs(entries, pdfs, [Path("/lib")])
    assert [x.entry_index for x in d] == [1, 0]


def test_pdf_next_to_a_catalog_only_matches_that_catalog() -> None:
    entries = [
        _entry("Therac Accidents Report", catalog="/lib/a/README.md"),
        _entry("Unrelated", catalog="/lib/b/README.md"),
    ]
    pdfs = [PdfCandidate(Path("/lib/b/therac-accidents-report.pdf"))]
    [d] = link_pdfs(entries, pdfs, [Path("/lib")])
    assert d.entry_index is None
    # outside every catalog folder, any entry may match
    [d] = link_pdfs(entries, [PdfCandidate(Path("/elsewhere/therac-accidents-report.pdf"))], [Path("/lib")])
    assert d.entry_index == 0


def test_generic_and_unrelated_names_do_not_link() -> None:
    entries = [_entry("A Survey of Paper Writing", links=[Link("paper", "https://x.org/paper.pdf")])]
    pdfs = [PdfCandidate(Path("/lib/paper.pdf")), PdfCandidate(Path("/lib/zzz.pdf"))]
    d = link_pdfs(entries, pdfs, [Path("/lib")])
    assert [x.entry_index for x in d] == [None, None]
    assert all(x.score < THRESHOLD for x in d)


def test_empty_inputs() -> None:
    assert link_pdfs([], [], []) == []
    [d] = link_pdfs([], [PdfCandidate(Path("/x/a.pdf"))], [])
    assert (d.entry_index, d.method, d.unsure, d.attachment) == (None, "none", False, False)
