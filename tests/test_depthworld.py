"""Tests of DepthWorld (crossflow_mini.datasets.depthworld) and the Middlebury stereo check
(crossflow_mini.datasets.stereo): the geometry against closed forms derived here, shading and shadows,
determinism, shapes and ranges, the depth <-> target mapping, and the stereo ground truth."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from crossflow_mini.datasets import depthworld as dw
from crossflow_mini.datasets import stereo
from crossflow_mini.datasets.depthworld import DepthWorldConfig, SceneSpec, Texture

CFG = DepthWorldConfig(n_train=96, n_val=32, n_test=32, seed=3)
TAN = math.tan(math.radians(dw.FIELD_OF_VIEW_DEG / 2))
# Planes are hit by one division; objects solve a quadratic in float32, whose cancellation costs a few ulps.
PLANE_RTOL, OBJECT_RTOL = 2e-6, 1e-5
PLAIN = Texture("checker", (0.8, 0.8, 0.8), (0.8, 0.8, 0.8))  # a texture of one colour: albedo 0.8 everywhere


def ndc(size: int) -> np.ndarray:
    """Normalised image coordinates of the pixel centres, derived independently: (2 (i + 0.5) / S - 1) tan(fov/2)."""
    return (2 * (np.arange(size) + 0.5) / size - 1) * TAN


@pytest.fixture(scope="module")
def train() -> dw.DepthWorldSplit:
    return dw.generate_split("train", CFG, workers=1)


# ------------------------------------------------------------------------------------------ closed-form geometry
def test_ground_plane_depth_row_by_row():
    # Camera at height h pitched down by p; pixel row i looks along D = (u, -v_i cos p - sin p, cos p - v_i sin p)
    # (axis component 1, so t = z-depth). The ground y = 0 is hit at h + t D_y = 0: t = h / (sin p + v_i cos p),
    # visible where that denominator is positive; beyond DEPTH_FAR the sky plane hides it.
    h, pitch, size = 1.7, math.radians(12.0), 32
    r = dw.render_scene(SceneSpec(camera_height=h, camera_pitch_deg=12.0, back_wall_z=None), size)
    denom = math.sin(pitch) + ndc(size) * math.cos(pitch)
    with np.errstate(divide="ignore"):
        expected = np.where(denom > 0, h / denom, np.inf)
    ground_rows = expected < dw.DEPTH_FAR
    assert 10 < ground_rows.sum() < size  # both ground and sky are in view: the test means something
    depth, surface = r.depth[0], r.surface[0]
    for i in range(size):
        if ground_rows[i]:
            assert (surface[i] == dw.GROUND).all(), f"row {i}"
            np.testing.assert_allclose(depth[i], expected[i], rtol=PLANE_RTOL, err_msg=f"row {i}")
        else:
            assert (surface[i] == dw.SKY).all() and (depth[i] == dw.DEPTH_FAR).all(), f"row {i}"


def test_walls_and_ground_match_their_closed_forms():
    # Back wall z = Z: t = Z / (cos p - v sin p); side walls x = -L, x = R: t = L / -u, R / u (u < 0, u > 0).
    h, p_deg, z_back, left, right, size = 1.2, 20.0, 10.0, 3.0, 4.5, 24
    p = math.radians(p_deg)
    r = dw.render_scene(SceneSpec(camera_height=h, camera_pitch_deg=p_deg, back_wall_z=z_back,
                                  side_walls=(left, right)), size)
    u, v = ndc(size)[None, :], ndc(size)[:, None]
    with np.errstate(divide="ignore"):
        candidates = np.stack(np.broadcast_arrays(
            np.full((size, size), dw.DEPTH_FAR),
            np.where(math.sin(p) + v * math.cos(p) > 0, h / (math.sin(p) + v * math.cos(p)), np.inf),
            np.where(math.cos(p) - v * math.sin(p) > 0, z_back / (math.cos(p) - v * math.sin(p)), np.inf),
            np.where(u < 0, left / -u, np.inf),
            np.where(u > 0, right / u, np.inf)))
    np.testing.assert_allclose(r.depth[0], candidates.min(axis=0), rtol=PLANE_RTOL)
    np.testing.assert_array_equal(r.surface[0], candidates.argmin(axis=0))  # ids: sky, ground, back, left, right
    assert set(np.unique(r.surface[0])) == {dw.GROUND, dw.BACK_WALL, dw.LEFT_WALL, dw.RIGHT_WALL}


@pytest.mark.parametrize("size", [33, 32])
def test_sphere_straight_ahead(size):
    # A sphere of radius r resting on the ground, its centre on the optical axis at distance L: centre height
    # r = h - L sin p, so L = (h - r) / sin p. In the camera frame the centre is (0, 0, L), and the ray (a, b, 1)
    # meets the sphere at t = (L - sqrt(L^2 - (1 + a^2 + b^2)(L^2 - r^2))) / (1 + a^2 + b^2). On the axis: L - r.
    h, radius, p_deg = 1.5, 0.5, 10.0
    dist = (h - radius) / math.sin(math.radians(p_deg))
    obj = dw.sphere(0.0, dist * math.cos(math.radians(p_deg)), radius)
    r = dw.render_scene(SceneSpec(objects=(obj,), camera_height=h, camera_pitch_deg=p_deg), size)
    depth, surface = r.depth[0], r.surface[0]
    if size % 2:
        c = size // 2  # the centre pixel looks along the axis
        assert surface[c, c] == dw.OBJECT_SURFACE
        assert depth[c, c] == pytest.approx(dist - radius, rel=OBJECT_RTOL)
    a, b = ndc(size)[None, :], ndc(size)[:, None]
    q = 1 + a * a + b * b
    disc = dist ** 2 - q * (dist ** 2 - radius ** 2)
    hit = disc > 0
    clear = np.abs(disc) > 1e-3 * dist ** 2  # away from the silhouette, where float rounding could flip a pixel
    assert hit.sum() > 4
    np.testing.assert_array_equal((surface == dw.OBJECT_SURFACE)[clear], hit[clear])
    expected = (dist - np.sqrt(np.maximum(disc, 0))) / q
    np.testing.assert_allclose(depth[hit & clear], expected[hit & clear], rtol=OBJECT_RTOL)


def test_box_front_face_and_yaw():
    # Pitch 0: z-depth is the world z, so the whole front face of an unturned box is at z_c - half_z.
    h, z_c, half = 1.0, 5.0, (0.6, 0.7, 0.4)
    spec = SceneSpec(objects=(dw.box(0.0, z_c, half),), camera_height=h, camera_pitch_deg=0.0)
    r = dw.render_scene(spec, 32)
    front = r.surface[0] == dw.OBJECT_SURFACE
    assert front.sum() > 10
    np.testing.assert_allclose(r.depth[0][front], z_c - half[2], rtol=OBJECT_RTOL)
    # ... and it covers exactly the pixels whose ray meets that face: |u t| <= half_x, 0 <= h - v t <= 2 half_y
    # (the camera is inside the box's x and y ranges, so no side or top face shows).
    t, u, v = z_c - half[2], ndc(32)[None, :], ndc(32)[:, None]
    np.testing.assert_array_equal(front, (np.abs(u * t) <= half[0]) & (h - v * t >= 0) & (h - v * t <= 2 * half[1]))
    # Turned by 90 degrees the box with half sides (a, h, c) is the box (c, h, a).
    turned = dw.render_scene(dataclasses.replace(spec, objects=(dw.box(0.0, z_c, (0.4, 0.7, 0.6), yaw_deg=90.0),)),
                             32)
    np.testing.assert_array_equal(turned.surface, r.surface)
    np.testing.assert_allclose(turned.depth, r.depth, rtol=1e-5)
    # Turned by 45 degrees the nearest point is a vertical edge at z_c - sqrt(a^2 + c^2) (a square base: a = c).
    edge = dw.render_scene(dataclasses.replace(spec, objects=(dw.box(0.0, z_c, (0.5, 0.7, 0.5), yaw_deg=45.0),)),
                           33)
    assert edge.depth[0][edge.surface[0] == dw.OBJECT_SURFACE].min() == pytest.approx(z_c - 0.5 * math.sqrt(2),
                                                                                      rel=1e-3)


def test_cylinder_and_cone_closed_forms():
    size, h, z_c, radius = 33, 1.0, 6.0, 0.8
    a, b = ndc(size)[None, :], ndc(size)[:, None]
    # Cylinder of height 3 (above the camera), pitch 0: the side x^2 + (z - z_c)^2 = r^2 along x = a t, z = t
    # gives t = (z_c - sqrt(z_c^2 - (1 + a^2)(z_c^2 - r^2))) / (1 + a^2), the same in every row it covers.
    r = dw.render_scene(SceneSpec(objects=(dw.cylinder(0.0, z_c, radius, 3.0),), camera_height=h,
                                  camera_pitch_deg=0.0), size)
    side = r.surface[0] == dw.OBJECT_SURFACE
    with np.errstate(invalid="ignore"):  # NaN in the columns that miss the cylinder
        expected = np.broadcast_to((z_c - np.sqrt(z_c ** 2 - (1 + a * a) * (z_c ** 2 - radius ** 2))) / (1 + a * a),
                                   (size, size))
    assert side.sum() > 20
    np.testing.assert_allclose(r.depth[0][side], expected[side], rtol=OBJECT_RTOL)
    # Cone (base radius R, apex height H), centre column (x = 0): its near outline there is z = z_c - R (1 - y / H).
    # With y = h + t D_y, z = t D_z (D_y = -v cos p - sin p, D_z = cos p - v sin p):
    # t = (z_c - R + R h / H) / (D_z - R D_y / H), where 0 <= y <= H. Seen from below the apex and, looking
    # down steeply, from above it (rays steeper than the cone's side flip the order of the quadratic's roots).
    for h_cam, p_deg, cone_r, cone_h in ((1.0, 0.0, 1.0, 2.0), (3.0, 30.0, 1.2, 1.0)):
        p = math.radians(p_deg)
        r = dw.render_scene(SceneSpec(objects=(dw.cone(0.0, 4.0, cone_r, cone_h),), camera_height=h_cam,
                                      camera_pitch_deg=p_deg), size)
        v = ndc(size)
        d_y, d_z = -v * math.cos(p) - math.sin(p), math.cos(p) - v * math.sin(p)
        t = (4.0 - cone_r + cone_r * h_cam / cone_h) / (d_z - cone_r * d_y / cone_h)
        y = h_cam + t * d_y
        on_cone = (y > 0.02) & (y < 0.98 * cone_h)  # clear of the base and the apex
        col = r.surface[0][:, size // 2] == dw.OBJECT_SURFACE
        assert on_cone.sum() > 3 and col[on_cone].all()
        np.testing.assert_allclose(r.depth[0][on_cone, size // 2], t[on_cone], rtol=OBJECT_RTOL)


def test_cylinder_top_cap_seen_from_above():
    # A short cylinder (height H < h) whose cap centre (0, H, z_c) lies on the optical axis: tan p = (h - H) / z_c.
    # The centre pixel sees it at distance sqrt(z_c^2 + (h - H)^2); every cap pixel lies on the plane y = H:
    # t = (h - H) / (sin p + v cos p), at a point inside the disc x^2 + (z - z_c)^2 <= r^2.
    size, h, z_c, radius, height = 65, 1.5, 5.0, 0.8, 0.6
    p = math.atan2(h - height, z_c)
    r = dw.render_scene(SceneSpec(objects=(dw.cylinder(0.0, z_c, radius, height),), camera_height=h,
                                  camera_pitch_deg=math.degrees(p)), size)
    c = size // 2
    assert r.surface[0, c, c] == dw.OBJECT_SURFACE
    assert r.depth[0, c, c] == pytest.approx(math.hypot(z_c, h - height), rel=OBJECT_RTOL)
    u, v = ndc(size)[None, :], ndc(size)[:, None]
    t = (h - height) / (math.sin(p) + v * math.cos(p))
    x, z = t * u, t * (math.cos(p) - v * math.sin(p))
    inside = np.broadcast_to(x * x + (z - z_c) ** 2 < (0.9 * radius) ** 2, (size, size))  # clear of the rim
    assert inside.sum() > 10
    assert (r.surface[0][inside] == dw.OBJECT_SURFACE).all()
    np.testing.assert_allclose(r.depth[0][inside], np.broadcast_to(t, (size, size))[inside], rtol=OBJECT_RTOL)


def test_focal_length_matches_the_pixel_grid():
    for size in (32, 64):
        f = dw.focal_length_px(size)
        np.testing.assert_allclose(ndc(size) * f, np.arange(size) + 0.5 - size / 2, atol=1e-9)


# -------------------------------------------------------------------------------------------- shading
def test_lambert_ambient_and_a_cast_shadow():
    # Flat albedo 0.8 everywhere on the ground; light from the right (azimuth 90) at elevation e. A lit ground
    # pixel is 0.8 (ambient + (1 - ambient) sin e); a shadowed one 0.8 ambient. The shadow of a sphere (centre
    # (x, r, z)) is centred where the ray from its centre away from the light meets the ground: x - r L_x / L_y.
    el, ambient, radius, x_s, z_s, h, p_deg, size = 60.0, 0.3, 0.6, 0.0, 5.0, 2.0, 25.0, 64
    spec = SceneSpec(objects=(dw.sphere(x_s, z_s, radius),), camera_height=h, camera_pitch_deg=p_deg,
                     light_elevation_deg=el, light_azimuth_deg=90.0, ambient=ambient, ground_texture=PLAIN)
    lit_scene, unshadowed = dw.render_scene(spec, size), dw.render_scene(spec, size, shadows=False)
    np.testing.assert_array_equal(lit_scene.depth, unshadowed.depth)
    e = math.radians(el)
    shadow_x = x_s - radius * math.cos(e) / math.sin(e)
    # project the ground point (shadow_x, 0, z_s) into the image: camera coords (x, y_c, z_c) -> pixel
    p = math.radians(p_deg)
    x_cam, y_cam, z_cam = shadow_x, h * math.cos(p) - z_s * math.sin(p), z_s * math.cos(p) + h * math.sin(p)
    f = dw.focal_length_px(size)
    col, row = int(size / 2 + f * x_cam / z_cam), int(size / 2 + f * y_cam / z_cam)
    assert lit_scene.surface[0, row, col] == dw.GROUND
    np.testing.assert_array_equal(lit_scene.images[0, row, col], round(0.8 * ambient * 255))
    np.testing.assert_array_equal(unshadowed.images[0, row, col], round(0.8 * (ambient + (1 - ambient) * math.sin(e))
                                                                        * 255))
    # shadows only darken, and only pixels that a light would reach
    assert (lit_scene.images <= unshadowed.images).all()
    assert (lit_scene.images < unshadowed.images).any(axis=-1).sum() > 5


def test_turned_box_faces_are_shaded_by_their_normals():
    # A box turned by yaw: its front face (local normal -z) has world normal (-sin yaw, 0, -cos yaw). A light at
    # elevation 0, azimuth -yaw points exactly along it, so that face shows the full colour; the side face
    # (world normal (-cos yaw, 0, sin yaw)) and the top are perpendicular to the light: ambient only.
    yaw, ambient, colour = 30.0, 0.4, (1.0, 0.6, 0.2)
    spec = SceneSpec(objects=(dw.box(0.5, 5.0, (0.6, 0.5, 0.6), yaw_deg=yaw, colour=colour),), camera_height=1.5,
                     camera_pitch_deg=10.0, light_elevation_deg=0.0, light_azimuth_deg=-yaw, ambient=ambient)
    r = dw.render_scene(spec, 64, shadows=False)
    pixels = r.images[0][r.surface[0] == dw.OBJECT_SURFACE]
    full, dim = np.rint(np.array(colour) * 255), np.rint(np.array(colour) * ambient * 255)
    is_full, is_dim = (pixels == full).all(axis=1), (pixels == dim).all(axis=1)
    assert is_full.sum() > 50 and is_dim.sum() > 20 and (is_full | is_dim).all()


def test_a_scene_re_renders_from_its_parameters(train):
    for i in (0, 7, 42):
        r = dw.render_scene(train.scene(i), CFG.image_size, shadows=CFG.shadows)
        np.testing.assert_array_equal(r.images[0], train.images[i])
        np.testing.assert_array_equal(r.depth[0], train.depth[i])
        np.testing.assert_array_equal(r.surface[0], train.surface[i])


# ---------------------------------------------------------------------------------- splits, shapes, ranges
def test_shapes_dtypes_and_ranges(train):
    n, s = CFG.n_train, CFG.image_size
    assert len(train) == n
    assert train.images.shape == (n, s, s, 3) and train.images.dtype == np.uint8
    assert train.depth.shape == (n, s, s) and train.depth.dtype == np.float32
    assert train.surface.shape == (n, s, s) and train.surface.dtype == np.uint8
    assert (train.depth > dw.DEPTH_NEAR).all() and (train.depth <= dw.DEPTH_FAR).all()
    assert not (train.surface == dw.SKY).any()  # with walls every pixel hits geometry
    x, d, t = train.images_tensor(), train.depth_tensor(), train.target_tensor()
    assert x.shape == (n, 3, s, s) and x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    assert d.shape == (n, 1, s, s) and torch.equal(d[:, 0], torch.from_numpy(train.depth))
    assert t.shape == (n, 1, s, s) and t.min() >= -1 and t.max() <= 1
    counts = train.scenes.n_objects
    assert counts.min() >= 1 and counts.max() <= dw.MAX_OBJECTS
    assert set(np.unique(train.scenes.kinds[train.scenes.kinds >= 0])) == set(range(len(dw.PRIMITIVES)))
    shown = np.array([(train.surface[i] >= dw.OBJECT_SURFACE).any() for i in range(n)])
    assert shown.mean() > 0.95  # objects are placed in view


def test_objects_do_not_overlap_and_stay_between_the_walls(train):
    sc = train.scenes
    on = sc.kinds >= 0
    radius = np.where(sc.kinds == dw.PRIMITIVES.index("box"), np.hypot(sc.half_extents[..., 0],
                                                                      sc.half_extents[..., 2]),
                      sc.half_extents[..., 0])
    for a in range(dw.MAX_OBJECTS):
        for b in range(a + 1, dw.MAX_OBJECTS):
            both = on[:, a] & on[:, b]
            gap = np.hypot(*(sc.positions[:, a] - sc.positions[:, b]).T) - radius[:, a] - radius[:, b]
            assert (gap[both] >= dw.OBJECT_GAP - 1e-5).all()
    x = sc.positions[..., 0]
    assert ((x - radius >= -sc.side_walls[:, :1] + dw.WALL_MARGIN - 1e-5) | ~on).all()
    assert ((x + radius <= sc.side_walls[:, 1:] - dw.WALL_MARGIN + 1e-5) | ~on).all()
    assert (sc.positions[..., 1][on] + radius[on] < sc.back_wall_z[:, None].repeat(dw.MAX_OBJECTS, 1)[on]).all()


def test_without_walls_the_sky_is_the_far_plane():
    data = dw.generate_split("val", dataclasses.replace(CFG, walls=False), workers=1)
    sky = data.surface == dw.SKY
    assert sky.any() and not (data.surface == dw.BACK_WALL).any()
    assert (data.depth[sky] == dw.DEPTH_FAR).all() and (data.depth[~sky] < dw.DEPTH_FAR).all()


def test_64_pixel_option():
    data = dw.generate_split("test", dataclasses.replace(CFG, n_test=4, image_size=64), workers=1)
    assert data.images.shape == (4, 64, 64, 3) and data.depth.shape == (4, 64, 64)
    small = dw.generate_split("test", dataclasses.replace(CFG, n_test=4), workers=1)
    np.testing.assert_array_equal(data.scenes.positions, small.scenes.positions)  # same scenes, finer pixels


def test_determinism_and_split_independence(train, monkeypatch):
    monkeypatch.setattr(dw, "RENDER_CHUNK", 16)  # several chunks, rendered on two threads
    again = dw.generate_split("train", CFG, workers=2)
    assert again.images.tobytes() == train.images.tobytes()
    assert again.depth.tobytes() == train.depth.tobytes()
    val = dw.generate_split("val", CFG, workers=1)
    assert not np.array_equal(val.images, train.images[: len(val)])
    other_seed = dw.generate_split("val", dataclasses.replace(CFG, seed=4), workers=1)
    assert not np.array_equal(other_seed.images, val.images)
    assert len({dw.split_seed(s, CFG) for s in dw.SPLITS}) == len(dw.SPLITS)


def test_load_is_cached_and_read_only():
    cfg = dataclasses.replace(CFG, n_val=8)
    data = dw.load_depthworld("val", cfg)
    assert dw.load_depthworld("val", cfg) is data
    with pytest.raises(ValueError):
        data.depth[0, 0, 0] = 1.0
    with pytest.raises(ValueError):
        data.scenes.positions[0, 0, 0] = 1.0
    item = dw.DepthWorldDataset("val", cfg)[3]
    assert item["image"].shape == (3, 32, 32) and item["depth"].shape == (1, 32, 32)
    assert torch.equal(item["target"], dw.depth_to_target(item["depth"]))  # (torch.testing imports slowly)


def test_clear_errors():
    with pytest.raises(ValueError, match="split"):
        dw.generate_split("dev", CFG)
    with pytest.raises(ValueError, match="n_val"):
        dw.generate_split("val", dataclasses.replace(CFG, n_val=0))
    with pytest.raises(ValueError, match="image_size"):
        dw.generate_split("val", dataclasses.replace(CFG, image_size=4))
    with pytest.raises(ValueError, match="max_objects"):
        dw.generate_split("val", dataclasses.replace(CFG, max_objects=5))
    with pytest.raises(ValueError, match="camera_pitch_deg"):
        dw.render_scene(SceneSpec(camera_pitch_deg=75.0))
    with pytest.raises(ValueError, match="kind"):
        dw.render_scene(SceneSpec(objects=(dw.Primitive("torus", 0.0, 5.0, (1.0, 1.0, 1.0)),)))
    with pytest.raises(ValueError, match="at most"):
        dw.render_scene(SceneSpec(objects=tuple(dw.sphere(x, 5.0, 0.3) for x in range(5))))


# --------------------------------------------------------------------------------------- target mapping
def test_depth_target_mapping_round_trips_and_is_log_depth():
    depth = np.geomspace(dw.DEPTH_NEAR, dw.DEPTH_FAR, 50)
    target = dw.depth_to_target(depth)
    assert target[0] == pytest.approx(-1.0) and target[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(np.diff(target), np.diff(target)[0], rtol=1e-9)  # equal ratios -> equal steps
    np.testing.assert_allclose(dw.target_to_depth(target), depth, rtol=1e-12)
    outside = np.array([0.1, 50.0])
    np.testing.assert_allclose(dw.target_to_depth(dw.depth_to_target(outside), clip=False), outside, rtol=1e-12)
    np.testing.assert_allclose(dw.target_to_depth(np.array([-3.0, 3.0])), [dw.DEPTH_NEAR, dw.DEPTH_FAR])
    t = torch.linspace(-1, 1, 9)
    assert torch.allclose(dw.depth_to_target(dw.target_to_depth(t)), t, atol=1e-6, rtol=0)
    assert dw.depth_to_target(np.float32(3.0)).dtype == np.float32
    with pytest.raises(ValueError, match="positive"):
        dw.depth_to_target(np.array([1.0, 0.0]))


# ------------------------------------------------------------------------------------------------ stereo
def test_motorcycle_loads_offline_with_its_holes():
    sample = stereo.load_motorcycle()
    assert sample.image.shape == (*stereo.FULL_SHAPE, 3) and sample.image.dtype == np.uint8
    assert sample.disparity.shape == stereo.FULL_SHAPE and sample.valid.dtype == bool
    with np.load(stereo._data_path(stereo.DISPARITY_FILE)) as f:
        raw = f["arr_0"]
    assert np.isinf(raw).any() and not np.isnan(raw).any()  # the holes are +inf in the shipped file
    np.testing.assert_array_equal(sample.valid, np.isfinite(raw))
    assert 0.88 < sample.valid.mean() < 0.97
    assert np.isnan(sample.disparity[~sample.valid]).all() and np.isfinite(sample.disparity[sample.valid]).all()
    depth = sample.depth[sample.valid]
    assert 1.5 < depth.min() and depth.max() < 6.0  # a motorcycle a few metres in front of a garage wall
    # Z = f B / (d + doffs) and back
    np.testing.assert_allclose(sample.calibration.disparity_from_depth(depth), sample.disparity[sample.valid],
                               rtol=1e-5)


def test_motorcycle_matches_skimage():
    from skimage.data import stereo_motorcycle

    left, _, disp = stereo_motorcycle()
    sample = stereo.load_motorcycle()
    np.testing.assert_array_equal(sample.image, left)
    np.testing.assert_array_equal(sample.disparity[sample.valid], disp[sample.valid])


@pytest.mark.parametrize("size", [32, 64])
def test_model_input_downsamples_consistently(size):
    full = stereo.load_motorcycle()
    small = stereo.model_input(size)
    top, left, side = stereo.crop_box(stereo.FULL_SHAPE, size)
    k = side // size
    assert small.image.shape == (size, size, 3) and small.disparity.shape == (size, size)
    assert 0.85 < small.valid.mean() < 0.99
    # one block by hand: a fully valid block and a block that is mostly holes
    blocks_valid = full.valid[top:top + side, left:left + side].reshape(size, k, size, k).mean(axis=(1, 3))
    i, j = np.argwhere(blocks_valid == 1.0)[0]
    block = (slice(top + i * k, top + (i + 1) * k), slice(left + j * k, left + (j + 1) * k))
    assert small.disparity[i, j] == pytest.approx(full.disparity[block].mean() / k, rel=1e-5)
    assert small.depth[i, j] == pytest.approx(full.calibration.depth_from_disparity(full.disparity[block].mean()),
                                              rel=1e-5)
    np.testing.assert_array_equal(small.image[i, j], np.rint(full.image[block].reshape(-1, 3).mean(axis=0)))
    np.testing.assert_array_equal(small.valid, blocks_valid >= stereo.MIN_VALID_FRACTION)
    assert np.isnan(small.disparity[~small.valid]).all()
    x = small.image_tensor()
    assert x.shape == (1, 3, size, size) and -1 <= x.min() and x.max() <= 1
    assert torch.equal(small.valid_tensor()[0, 0], torch.from_numpy(np.array(small.valid)))


def test_crop_box_errors():
    assert stereo.crop_box((500, 741), 32) == (10, 130, 480)
    with pytest.raises(ValueError, match="does not fit"):
        stereo.crop_box((500, 741), 32, left=300)
    with pytest.raises(ValueError, match="size"):
        stereo.model_input(4)
