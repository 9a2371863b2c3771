"""Rendered causal scenes: determinism, what each factor changes in the picture, the causal graph."""

import numpy as np
import pytest

from mmcl_helpers.core.random_streams import hashed_uniform
from mmcl_helpers.datasets.scenes import (
    IMAGE_FACTORS,
    SEMANTIC_FACTORS,
    SHAPE_NAMES,
    SceneLatents,
    load_or_render,
    render_scenes,
    sample_scene_latents,
    spotlight_center,
)


def _fixed(n=1, **values):
    """Latents of n scenes with every factor set to a middle value, then overridden."""
    base = sample_scene_latents(n, seed=5).replace(
        shape=0, x_pos=1, y_pos=1, s_pos=0.5, color=0.5, s_color=0.5, b_color=0.5,
        rotation=0.0, scale=0.5, jitter_x=0.5, jitter_y=0.5, texture=0.0,
    )
    return base.replace(**values)


def test_sample_i_does_not_depend_on_the_batch():
    big = sample_scene_latents(50, seed=3)
    small = sample_scene_latents(5, seed=3, start=20)
    for name in SEMANTIC_FACTORS + IMAGE_FACTORS:
        np.testing.assert_array_equal(getattr(big, name)[20:25], getattr(small, name))
    np.testing.assert_array_equal(render_scenes(big[20:25]), render_scenes(small))
    np.testing.assert_array_equal(render_scenes(big)[20:25], render_scenes(small))
    other = sample_scene_latents(50, seed=4)
    assert not np.array_equal(big.s_pos, other.s_pos)


def test_images_have_the_promised_layout():
    lat = sample_scene_latents(16, seed=0)
    img = render_scenes(lat)
    assert img.shape == (16, 64, 64, 3) and img.dtype == np.uint8
    assert img.std() > 10  # not blank
    assert render_scenes(lat, size=32).shape == (16, 32, 32, 3)


def test_hashed_uniform_is_uniform_and_checks_arguments():
    u = hashed_uniform(0, np.arange(20000), 7)
    assert 0.0 <= u.min() and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.01
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert counts.min() > 1800
    with pytest.raises(ValueError, match="seed"):
        hashed_uniform(-1, np.arange(3), 0)


def test_changing_the_shape_changes_the_object_region_only():
    lat = _fixed(len(SHAPE_NAMES), shape=np.arange(len(SHAPE_NAMES)))
    img = render_scenes(lat).astype(int)
    for a in range(len(SHAPE_NAMES)):
        for b in range(a + 1, len(SHAPE_NAMES)):
            diff = np.abs(img[a] - img[b]).sum(-1)
            assert (diff > 30).sum() >= 15, (SHAPE_NAMES[a], SHAPE_NAMES[b])
            # The object sits in the middle cell: corners never change.
            assert diff[:12, :12].max() == 0 and diff[-12:, -12:].max() == 0


def test_position_moves_the_object():
    img = render_scenes(_fixed(2, x_pos=[0, 2], y_pos=[0, 2], color=0.0, b_color=1.0)).astype(int)
    red = (img[..., 0] - img[..., 2]) > 80  # object pixels (red object, violet background)
    assert red[0, :20, :20].sum() > 50 and red[0, 44:, 44:].sum() == 0
    assert red[1, 44:, 44:].sum() > 50 and red[1, :20, :20].sum() == 0


def test_largest_object_in_a_corner_cell_stays_inside_the_frame():
    # Every shape at full scale, pushed as far out as jitter allows, at all four corner cells and
    # every rotation step: no object pixel may touch the image border, or the picture would lose
    # part of the silhouette that the caption names.
    rows = []
    for shape in range(len(SHAPE_NAMES)):
        # (column, row, jitter_x, jitter_y): each corner cell, jittered towards its two borders.
        for (x, y, jx, jy) in ((0, 0, 0.0, 0.0), (2, 0, 1.0, 0.0), (0, 2, 0.0, 1.0), (2, 2, 1.0, 1.0)):
            for rot in np.linspace(0.0, 1.0, 12, endpoint=False):
                rows.append((shape, x, y, jx, jy, rot))
    shape, x, y, jx, jy, rot = (np.array(c) for c in zip(*rows))
    lat = _fixed(len(rows), shape=shape, x_pos=x, y_pos=y, jitter_x=jx, jitter_y=jy, rotation=rot,
                 scale=1.0, color=0.0, b_color=1.0)
    img = render_scenes(lat).astype(int)
    red = (img[..., 0] - img[..., 2]) > 80  # object pixels (red object, violet background)
    assert red.sum(axis=(1, 2)).min() > 200  # even the thin star covers 200+ pixels
    border = red[:, 0, :] | red[:, -1, :] | red[:, :, 0] | red[:, :, -1]
    assert not border.any()


def test_background_hue_changes_corner_pixels():
    img = render_scenes(_fixed(2, b_color=[0.0, 0.6], s_pos=0.5)).astype(int)
    corners = [(slice(0, 4), slice(0, 4)), (slice(-4, None), slice(0, 4))]
    for rows, cols in corners:
        assert np.abs(img[0, rows, cols] - img[1, rows, cols]).sum(-1).min() > 40
    # The object region is (nearly) untouched.
    assert np.abs(img[0, 30:34, 30:34] - img[1, 30:34, 30:34]).max() <= 3


def test_spotlight_position_moves_the_bright_region():
    s = np.array([0.0, 0.25, 0.5, 0.75, 1.0])  # NW, NE, centre, SW, SE
    x_pos, y_pos = np.array([2, 0, 0, 2, 0]), np.array([2, 2, 0, 0, 0])  # object far from the light
    img = render_scenes(_fixed(5, s_pos=s, x_pos=x_pos, y_pos=y_pos))
    lum = img.astype(float).sum(-1)
    expected = spotlight_center(s) * 64
    yy, xx = np.mgrid[:64, :64]
    for k in range(5):
        masked = lum[k].copy()
        cx, cy = (0.2 + 0.3 * x_pos[k]) * 64, (0.2 + 0.3 * y_pos[k]) * 64
        masked[np.hypot(xx - cx, yy - cy) < 16] = 0  # ignore the object
        yx = np.unravel_index(np.argmax(masked), masked.shape)
        assert np.hypot(yx[1] - expected[k, 0], yx[0] - expected[k, 1]) < 6, k


def test_object_colour_changes_only_the_object():
    img = render_scenes(_fixed(2, color=[0.0, 0.5])).astype(int)
    diff = np.abs(img[0] - img[1]).sum(-1)
    assert diff[28:36, 28:36].min() > 60
    assert diff[:8, :8].max() == 0


@pytest.mark.parametrize("factor", IMAGE_FACTORS)
def test_image_specific_factors_change_only_the_object(factor):
    # Each image-specific factor changes the picture, but only around the object in the centre
    # cell: the corners, far from the object and its shadow, stay the same.
    values = {"rotation": [0.0, 0.3], "scale": [0.0, 1.0], "jitter_x": [0.0, 1.0],
              "jitter_y": [0.0, 1.0], "texture": [0.0, 0.5]}[factor]
    img = render_scenes(_fixed(2, shape=3, **{factor: values})).astype(int)
    diff = np.abs(img[0] - img[1]).sum(-1)
    assert (diff > 20).sum() >= 10, factor
    assert diff[:12, :12].max() == 0 and diff[-12:, -12:].max() == 0, factor
    assert diff[:, :14].max() == 0 and diff[:, -14:].max() == 0, factor


def test_causal_graph_statistics():
    lat = sample_scene_latents(20000, seed=1)
    assert set(np.unique(lat.shape)) == set(range(7))
    assert set(np.unique(lat.x_pos)) == {0, 1, 2}
    for name in ("s_pos", "color", "s_color", "b_color"):
        v = getattr(lat, name)
        assert 0.0 <= v.min() and v.max() <= 1.0, name
    corr = np.corrcoef(lat.semantics(), rowvar=False)
    i = {n: k for k, n in enumerate(SEMANTIC_FACTORS)}
    pos_sum = lat.x_pos + lat.y_pos
    assert np.corrcoef(lat.color, pos_sum)[0, 1] > 0.8  # color = (x+y)/6 + U/3
    assert corr[i["s_color"], i["s_pos"]] > 0.6  # s_color = (s_pos + U)/2
    assert corr[i["b_color"], i["s_pos"]] > 0.6 and corr[i["b_color"], i["s_color"]] > 0.6
    assert abs(corr[i["shape"], i["color"]]) < 0.03 and abs(corr[i["x_pos"], i["s_pos"]]) < 0.03
    # Given its parents, color is uniform on an interval of width 1/3.
    resid = lat.color - pos_sum / 6
    assert resid.min() >= 0 and resid.max() <= 1 / 3
    assert abs(np.corrcoef(lat.rotation, lat.color)[0, 1]) < 0.03


def test_invalid_latents_are_rejected_with_the_factor_named():
    lat = sample_scene_latents(3, seed=0)
    with pytest.raises(ValueError, match="shape must be an integer in 0..6"):
        lat.replace(shape=7)
    with pytest.raises(ValueError, match=r"s_pos must lie in \[0, 1\]"):
        lat.replace(s_pos=1.5)
    with pytest.raises(ValueError, match="unknown factor"):
        lat.replace(hue=0.3)
    with pytest.raises(ValueError, match="entries"):
        SceneLatents(**{**lat.as_dict(), "color": np.zeros(2)})


def test_cache_round_trip_and_keying(tmp_path):
    lat, img = load_or_render(12, seed=2, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    lat2, img2 = load_or_render(12, seed=2, cache_dir=tmp_path)
    np.testing.assert_array_equal(img, img2)
    np.testing.assert_array_equal(lat.color, lat2.color)
    np.testing.assert_array_equal(img, render_scenes(sample_scene_latents(12, seed=2)))
    load_or_render(12, seed=3, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    files[0].write_bytes(b"damaged")  # a broken file is rendered again
    _, img3 = load_or_render(12, seed=2, cache_dir=tmp_path)
    np.testing.assert_array_equal(img, img3)


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path))
    load_or_render(4, seed=0)
    assert list((tmp_path / "scenes").glob("scenes-*.npz"))
