"""ILSVRC-2012 label names and lookups, formatted as in the blog."""
import numpy as np
import pytest

from breaking_nn import LabelError, Labels, format_predictions, get_label_name, imagenet_labels


def test_names_as_the_blog_prints_them():
    assert get_label_name(283) == "Persian cat"
    assert get_label_name(673) == "mouse, computer mouse"
    assert get_label_name(145) == "king penguin, Aptenodytes patagonica"
    assert len(imagenet_labels()) == 1000


@pytest.mark.parametrize("name", ["king penguin", "King Penguin", "Aptenodytes patagonica",
                                  "king penguin, Aptenodytes patagonica"])
def test_lookup_by_name(name):
    assert imagenet_labels().index(name) == 145


@pytest.mark.parametrize("bad", [-1, 1000, 2.5, None])
def test_out_of_range_or_non_label(bad):
    with pytest.raises(LabelError, match="out of range|class number"):
        imagenet_labels().index(bad)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(LabelError, match="unknown label name 'kng penguin'.*king penguin"):
        imagenet_labels().index("kng penguin")


def test_a_word_of_a_name_suggests_the_names_holding_it_one_per_class():
    two = Labels(["safe for work", "not safe for work"])
    with pytest.raises(LabelError, match=r"'safe'; did you mean 'safe for work' or 'not safe for work'\?"):
        two.index("safe")
    with pytest.raises(LabelError, match=r"did you mean 'king penguin'\?$"):  # not its synonyms too
        imagenet_labels().index("penguin")


def test_an_unknown_name_without_suggestions_says_what_to_pass():
    with pytest.raises(LabelError, match=r"'nsfw'; its classes are 0 'safe for work', 1 'not safe for work'$"):
        Labels(["safe for work", "not safe for work"]).index("nsfw")
    with pytest.raises(LabelError, match=r"pass a class number 0 to 999, or a name: every name is in .*synset_words"):
        imagenet_labels().index("zzzz")


def test_ambiguous_name_lists_the_candidates():
    with pytest.raises(LabelError, match=r"134 \(crane\).*517 \(crane\)"):
        imagenet_labels().index("crane")


def test_label_file_errors(tmp_path):
    with pytest.raises(LabelError, match="does not exist"):
        Labels.from_file(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(LabelError, match="empty"):
        Labels.from_file(tmp_path / "empty.txt")


def test_prediction_lines_match_the_blog():
    probs = np.zeros(1000, np.float32)
    probs[[283, 700, 673, 18, 742]] = [0.1394, 0.1338, 0.0605, 0.0427, 0.026]
    lines = format_predictions(probs, imagenet_labels(), 5).splitlines()
    assert lines == [
        "label: 283 (Persian cat), certainty: 13.94%",
        "label: 700 (paper towel), certainty: 13.38%",
        "label: 673 (mouse, computer mouse), certainty: 6.05%",
        "label: 018 (magpie), certainty: 4.27%",
        "label: 742 (printer), certainty: 2.6%",
    ]
    assert format_predictions(probs, imagenet_labels(), 1) == "label: 283 (Persian cat)\ncertainty: 13.94%"
