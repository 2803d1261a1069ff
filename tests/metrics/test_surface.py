"""HD95 and NSD in mm: analytic answers on two spheres with anisotropic voxels, MONAI equality, empty masks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unicon_bench.metrics.surface import image_diagonal_mm, surface_metrics

SPACING = (0.5, 0.6, 0.7)  # mm, anisotropic


def spheres(a: float, b: float, offset: float, spacing=SPACING):
    """Masks (1, 1, D, H, W) of a sphere of radius ``a`` at the origin and one of radius ``b`` at ``offset`` along z."""
    ext = b + offset + 3
    z, y, x = np.meshgrid(*(np.arange(-ext, ext + 1e-9, s) for s in spacing), indexing="ij")
    small = z**2 + y**2 + x**2 <= a * a
    large = (z - offset) ** 2 + y**2 + x**2 <= b * b
    return small[None, None], large[None, None]


def analytic(a: float, b: float, d: float, tau: float) -> tuple[float, float]:
    """HD95 and NSD of sphere A (radius a) inside sphere B (radius b, centre d away), a + d < b.

    By Archimedes, a point of a sphere's surface has u = cos(polar angle) uniform on [-1, 1]. From A's
    surface the distance to B's is b - sqrt(a^2 + d^2 - 2adu), increasing in u: its 95th percentile is at
    u = 0.9. From B's surface the distance to A's is sqrt(b^2 + d^2 + 2bdv) - a, 95th percentile at v = 0.9.
    HD95 is the larger of the two. NSD: the share of each surface within tau, weighted by the areas a^2, b^2.
    """
    hd_a = b - math.sqrt(a * a + d * d - 2 * a * d * 0.9)
    hd_b = math.sqrt(b * b + d * d + 2 * b * d * 0.9) - a
    u = min(max((a * a + d * d - (b - tau) ** 2) / (2 * a * d), -1.0), 1.0)
    v = min(max(((a + tau) ** 2 - b * b - d * d) / (2 * b * d), -1.0), 1.0)
    share_a, share_b = (u + 1) / 2, (v + 1) / 2
    return max(hd_a, hd_b), (a * a * share_a + b * b * share_b) / (a * a + b * b)


@pytest.mark.parametrize("a,b,d,tau", [(6.0, 10.0, 3.0, 4.0), (5.0, 12.0, 4.0, 6.0)])
def test_offset_spheres_match_the_analytic_answer(a, b, d, tau):
    pred, target = spheres(a, b, d)
    hd95, nsd = surface_metrics(pred, target, tau, SPACING)
    want_hd, want_nsd = analytic(a, b, d, tau)
    assert hd95[0] == pytest.approx(want_hd, abs=max(SPACING))  # voxelisation: within one voxel
    assert nsd[0] == pytest.approx(want_nsd, abs=0.05)
    # symmetric: swapping prediction and reference changes nothing
    back = surface_metrics(target, pred, tau, SPACING)
    assert back[0][0] == pytest.approx(hd95[0]) and back[1][0] == pytest.approx(nsd[0])


def test_concentric_spheres_and_the_tolerance():
    pred, target = spheres(6.0, 10.0, 0.0)
    hd_in, nsd_in = surface_metrics(pred, target, 4.5, SPACING)  # every boundary point is 4 mm away
    _, nsd_out = surface_metrics(pred, target, 3.5, SPACING)
    assert hd_in[0] == pytest.approx(4.0, abs=max(SPACING))
    assert nsd_in[0] == 1.0
    assert nsd_out[0] < 0.05


def test_spacing_is_used():
    pred, target = spheres(6.0, 10.0, 3.0)
    coarse = tuple(2 * s for s in SPACING)  # the same voxels, twice the size: every distance doubles
    assert surface_metrics(pred, target, 4.0, coarse)[0][0] == pytest.approx(2 * surface_metrics(pred, target, 4.0, SPACING)[0][0])


def test_equals_monai_compute_functions():
    import torch
    from monai.metrics import compute_hausdorff_distance, compute_surface_dice

    rng = np.random.default_rng(0)
    pred = rng.random((6, 1, 12, 14, 10)) > 0.8
    target = rng.random((6, 1, 12, 14, 10)) > 0.9
    pred[1, 0, :2] = True  # touching the border
    spacing = (1.2, 0.7, 2.0)
    hd95, nsd = surface_metrics(pred, target, 1.5, spacing)
    p, t = torch.from_numpy(pred), torch.from_numpy(target)
    ref_hd = compute_hausdorff_distance(p, t, include_background=True, percentile=95, spacing=spacing)[:, 0]
    ref_nsd = compute_surface_dice(p, t, [1.5], include_background=True, spacing=spacing)[:, 0]
    np.testing.assert_allclose(hd95, ref_hd.numpy(), atol=1e-5)
    np.testing.assert_allclose(nsd, ref_nsd.numpy(), atol=1e-6)


def test_empty_masks_follow_metrics_reloaded():
    shape = (2, 1, 8, 9, 10)
    spacing = (2.0, 1.0, 3.0)
    empty = np.zeros(shape, bool)
    full = np.zeros(shape, bool)
    full[:, 0, 2:5, 2:5, 2:5] = True
    hd95, nsd = surface_metrics(empty, empty, 2.0, spacing)  # both empty: perfect
    assert list(hd95) == [0.0, 0.0] and list(nsd) == [1.0, 1.0]
    diagonal = math.sqrt((8 * 2.0) ** 2 + (9 * 1.0) ** 2 + (10 * 3.0) ** 2)
    assert image_diagonal_mm(shape[2:], spacing) == pytest.approx(diagonal)
    for pred, target in ((empty, full), (full, empty)):  # one empty: worst
        hd95, nsd = surface_metrics(pred, target, 2.0, spacing)
        assert list(hd95) == pytest.approx([diagonal, diagonal]) and list(nsd) == [0.0, 0.0]


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        surface_metrics(np.zeros((1, 1, 4, 4, 4)), np.zeros((1, 1, 4, 4, 5)), 1.0)
    with pytest.raises(ValueError, match="tolerance"):
        surface_metrics(np.zeros((1, 1, 4, 4, 4)), np.zeros((1, 1, 4, 4, 4)), -1.0)
    with pytest.raises(ValueError, match="spacing"):
        surface_metrics(np.zeros((1, 1, 4, 4, 4)), np.zeros((1, 1, 4, 4, 4)), 1.0, (1.0, 0.0, 1.0))
