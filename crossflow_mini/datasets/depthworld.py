"""DepthWorld: procedural 3-D scenes, ray-cast in numpy, with the exact depth of every pixel.

Each sample is an RGB image (``cfg.image_size`` square, 32 x 32 by default) of a small "room": a textured ground
plane, a textured back wall (and, at random, a left and/or a right wall), 1-4 primitives resting on the ground
(spheres, boxes turned about the vertical axis, cylinders, cones) and a directional light with Lambertian +
ambient shading and cast shadows. Next to the image we keep its exact depth map and every scene parameter, so a
notebook can show the geometry and re-render any scene (:meth:`DepthWorldSplit.scene` + :func:`render_scene`).

Frames and units (lengths in metres)
------------------------------------
World: x to the right, y up, z forward; the ground is the plane ``y = 0``. The camera sits at ``(0, h, 0)``,
looks along +z, pitched DOWN by ``p`` (no yaw, no roll). Its frame has x_c = right, y_c = down (image rows),
z_c = the optical axis ``(0, -sin p, cos p)``, so ``y_c = (0, -cos p, -sin p)``.

Pinhole camera with a fixed field of view :data:`FIELD_OF_VIEW_DEG` (the same horizontally and vertically,
square images). Pixel ``(i, j)`` of an S x S image looks through its centre, at normalised image coordinates
``u_j = (2 (j + 0.5) / S - 1) tan(fov / 2)`` (right) and ``v_i = (2 (i + 0.5) / S - 1) tan(fov / 2)`` (down), i.e.
along the camera-frame direction ``(u_j, v_i, 1)``; the focal length is ``f = S / (2 tan(fov / 2))`` pixels
(:func:`focal_length_px`). In the world that direction is::

    D = (u_j,  -v_i cos p - sin p,  cos p - v_i sin p)

and because its component along the optical axis is exactly 1, the ray parameter ``t`` of ``C + t D`` IS the
depth we store.

**Depth = z-depth**: the distance of the visible surface point from the camera *along the optical axis*
(``depth = (P - C) . z_c``), not the Euclidean ray length - the convention of KITTI, NYUv2 and of stereo
(``Z = f B / d``). It is exact at each pixel centre (no anti-aliasing of depth), float32, in metres.

Background. With ``cfg.walls`` (the default) every pixel hits geometry: the back wall is an infinite plane
``z = back_wall_z`` and every camera ray goes forward (``D_z > 0``), so it ends on the ground, a wall or an
object. Without walls the ground reaches the horizon; the sky is then a camera-facing plane at the far bound
:data:`DEPTH_FAR` (depth exactly ``DEPTH_FAR``, surface id ``SKY``), and ground beyond it is hidden by it. So
every depth is ``<= DEPTH_FAR``, and in every *sampled* scene also ``> DEPTH_NEAR`` (the sampling ranges below
guarantee it: the nearest ground pixel is >= 0.86 m away, objects >= 1 m; a test checks it). A hand-written
scene (:func:`render_scene`) may put an object nearer than DEPTH_NEAR.

Two closed forms, useful to check the renderer (tests/test_depthworld.py does): the ground at image row i has
depth ``h / (sin p + v_i cos p)`` (the same in every column; visible where the denominator is positive), and the
back wall ``back_wall_z / (cos p - v_i sin p)``.

Network target. :func:`depth_to_target` maps depth to ``[-1, 1]`` by normalised log depth between
:data:`DEPTH_NEAR` and :data:`DEPTH_FAR`; :func:`target_to_depth` is its inverse. It is the one place that
defines the mapping (see its docstring for why log depth).

Shading and texture (the look, not the geometry): Lambertian ``albedo * (ambient + (1 - ambient) max(0, n.L)
* lit)`` with ``lit = 0`` where a shadow ray from the point towards the light hits an object (walls and ground
cast no shadows: a studio lit from the camera's side). The ground and the walls carry a procedural texture
(:data:`TEXTURES`: checker, stripes or a few summed sine waves, "noise"), faded to its mean colour where a
pixel's footprint is wider than about half a period, so that distant checkers do not alias; objects are flat
coloured.

Splits ``train`` / ``val`` / ``test`` use different seeds (:func:`split_seed`); the same config gives the same
bytes. Scene parameters are sampled first (one generator, in a fixed order), then rendered in chunks, so the
chunking (or threads, ``workers``) never changes a pixel. Speed: :func:`benchmark` (about 2,800 scenes/s at
32 x 32 on one thread of a busy 2-core machine).
"""

from __future__ import annotations

import functools
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset


@dataclass(frozen=True)
class DepthWorldConfig:
    """DepthWorld split sizes and options (see :mod:`crossflow_mini.datasets.depthworld`).

    ``walls``: a back wall in every scene (and each side wall with probability :data:`SIDE_WALL_PROBABILITY`);
    without walls the sky shows at depth :data:`DEPTH_FAR`. ``shadows``: objects cast shadows.
    ``max_objects``: each scene has 1..max_objects primitives (at most :data:`MAX_OBJECTS`)."""

    n_train: int = 20_000
    n_val: int = 1_000
    n_test: int = 2_000
    image_size: int = 32
    seed: int = 0
    walls: bool = True
    shadows: bool = True
    max_objects: int = 4


# ---------------------------------------------------------------------------------------------- conventions
FIELD_OF_VIEW_DEG = 60.0  # horizontal = vertical field of view of the pinhole camera
TAN_HALF_FOV = math.tan(math.radians(FIELD_OF_VIEW_DEG) / 2)
#: Depth bounds (metres) of every scene and of the network target: DEPTH_NEAR < depth <= DEPTH_FAR.
DEPTH_NEAR = 0.5
DEPTH_FAR = 20.0
_LOG_NEAR, _LOG_FAR = math.log(DEPTH_NEAR), math.log(DEPTH_FAR)

SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLIT_SEED_STRIDE = 1000  # split seed = cfg.seed * SPLIT_SEED_STRIDE + SPLITS.index(split)
REFERENCE_SIZE = 32
MIN_IMAGE_SIZE = 8
PRIMITIVES: tuple[str, ...] = ("sphere", "box", "cylinder", "cone")
SPHERE, BOX, CYLINDER, CONE = range(len(PRIMITIVES))
TEXTURES: tuple[str, ...] = ("checker", "stripes", "noise")
CHECKER, STRIPES, NOISE = range(len(TEXTURES))
MAX_OBJECTS = 4
#: Surface ids of the ``surface`` map: 0 sky, 1 ground, 2-4 walls, OBJECT_SURFACE + k = object slot k.
SURFACES: tuple[str, ...] = ("sky", "ground", "back_wall", "left_wall", "right_wall",
                             *(f"object{k}" for k in range(MAX_OBJECTS)))
SKY, GROUND, BACK_WALL, LEFT_WALL, RIGHT_WALL, OBJECT_SURFACE = range(6)
GROUND_MATERIAL, WALL_MATERIAL = 0, 1  # index of the ground / the walls' texture in the per-scene texture arrays

# ------------------------------------------------------------------------------------------ sampling ranges
CAMERA_HEIGHT_RANGE = (1.0, 2.5)
CAMERA_PITCH_DEG_RANGE = (5.0, 30.0)  # looking down; the top row then looks 25 deg down to 25 deg up
MAX_PITCH_DEG = 90.0 - FIELD_OF_VIEW_DEG / 2  # steeper, the bottom rows would look backwards (D_z <= 0)
BACK_WALL_Z_RANGE = (11.0, 16.0)  # farthest wall point: 16 cos p + 2.5 sin p < 17.3 < DEPTH_FAR
SIDE_WALL_X_RANGE = (3.5, 7.0)  # distance of a side wall from the camera's vertical plane x = 0
SIDE_WALL_PROBABILITY = 0.5  # each side wall independently, when cfg.walls
OBJECT_Z_RANGE = (3.0, 9.0)  # forward distance of an object's centre on the ground
OBJECT_LATERAL_FRACTION = 0.7  # |x| <= this * (half the view width at the object's depth)
OBJECT_BOTTOM_NDC = 0.8  # an object's foot point projects at most this far down the image (ndc, 1 = bottom edge)
OBJECT_GAP = 0.2  # free space between the bounding circles of two objects on the ground
WALL_MARGIN = 0.1  # free space between an object's bounding circle and a side wall
MAX_PLACEMENT_ROUNDS = 200  # rejection-sampling rounds; objects still touching after that are dropped
#: (low, high) of the local half extents (sx, sy, sz) of each primitive: sphere radius; box half sides;
#: cylinder / cone base radius and half height. Every object's bounding circle has radius <= 1.28.
SPHERE_RADIUS_RANGE = (0.4, 1.0)
BOX_HALF_SIDE_RANGE = (0.3, 0.9)
CYLINDER_RADIUS_RANGE = (0.3, 0.7)
CONE_RADIUS_RANGE = (0.4, 0.9)
UPRIGHT_HALF_HEIGHT_RANGE = (0.3, 1.0)  # cylinders and cones
LIGHT_ELEVATION_DEG_RANGE = (30.0, 70.0)
LIGHT_AZIMUTH_DEG_RANGE = (-70.0, 70.0)  # 0 = light straight behind the camera; shadows fall away from it
AMBIENT_RANGE = (0.25, 0.45)
OBJECT_SATURATION_RANGE, OBJECT_VALUE_RANGE = (0.45, 0.9), (0.55, 1.0)
TEXTURE_SATURATION_RANGE, TEXTURE_VALUE_RANGE = (0.05, 0.45), (0.5, 0.9)
TEXTURE_CONTRAST_RANGE = (0.45, 0.8)  # colour_b = colour_a * this (the darker texture colour)
TEXTURE_PERIOD_RANGE = (0.6, 1.6)  # metres
TEXTURE_ANGLE_DEG_RANGE = (0.0, 90.0)  # turn of the pattern (checker and stripes repeat every 90 / 180 deg)
BOX_YAW_DEG_RANGE = (-90.0, 90.0)  # a box repeats every 180 deg

# ------------------------------------------------------------------------------------------------ rendering
NOISE_FREQUENCIES = (1.0, 1.9, 3.3)  # the "noise" texture: sine waves at these multiples of 1 / period
NOISE_ANGLE_STEP_DEG = 137.5  # successive waves turn by the golden angle (no two parallel)
NOISE_GAIN = 1.2  # the summed waves (a sum of len(NOISE_FREQUENCIES) unit sines) are scaled by gain / count
MIN_INCIDENCE_COS = 0.2  # grazing surfaces: the pixel footprint grows as 1 / cos(incidence), capped here
RAY_EPSILON = 1e-4  # hits closer than this along a ray are ignored (no self-hits of shadow rays)
SHADOW_BIAS = 2e-3  # shadow rays start this far off the surface, along its normal
NORMAL_EPSILON = 1e-12  # keeps the normalisation of a degenerate normal (a cone's apex) finite
SKY_HORIZON_RGB, SKY_ZENITH_RGB = (0.85, 0.9, 0.95), (0.45, 0.62, 0.9)
RENDER_CHUNK = 256  # scenes rendered at once (keeps the working set in cache: ~1 MB per array at 32 x 32)
RGB_MAX = 255.0


# ------------------------------------------------------------------------------------------- scene specs
@dataclass(frozen=True)
class Primitive:
    """One object resting on the ground. ``half_extents = (sx, sy, sz)``: the half sides of its local bounding
    box, so its centre is at ``(x, sy, z)``. A sphere has ``(r, r, r)``; a cylinder or cone ``(r, height / 2, r)``
    (vertical axis; the cone's apex on top); a box is turned by ``yaw_deg`` about the vertical axis (local ->
    world: ``x_w = cos(yaw) x_l + sin(yaw) z_l``, ``z_w = -sin(yaw) x_l + cos(yaw) z_l``). Colour: RGB in [0, 1]."""

    kind: str
    x: float
    z: float
    half_extents: tuple[float, float, float]
    yaw_deg: float = 0.0
    colour: tuple[float, float, float] = (0.85, 0.25, 0.2)


def sphere(x: float, z: float, radius: float, colour: tuple[float, float, float] = (0.85, 0.25, 0.2)) -> Primitive:
    """A sphere of ``radius`` resting on the ground at ``(x, z)``."""
    return Primitive("sphere", x, z, (radius, radius, radius), 0.0, colour)


def box(x: float, z: float, half_extents: tuple[float, float, float], yaw_deg: float = 0.0,
        colour: tuple[float, float, float] = (0.25, 0.45, 0.85)) -> Primitive:
    """A box with half sides ``half_extents`` (x, y, z in its own frame), turned by ``yaw_deg``."""
    return Primitive("box", x, z, tuple(half_extents), yaw_deg, colour)  # type: ignore[arg-type]


def cylinder(x: float, z: float, radius: float, height: float,
             colour: tuple[float, float, float] = (0.3, 0.75, 0.35)) -> Primitive:
    """An upright cylinder of ``radius`` and ``height`` standing on the ground at ``(x, z)``."""
    return Primitive("cylinder", x, z, (radius, height / 2, radius), 0.0, colour)


def cone(x: float, z: float, radius: float, height: float,
         colour: tuple[float, float, float] = (0.9, 0.75, 0.2)) -> Primitive:
    """An upright cone (base ``radius`` on the ground, apex at ``height``) standing at ``(x, z)``."""
    return Primitive("cone", x, z, (radius, height / 2, radius), 0.0, colour)


@dataclass(frozen=True)
class Texture:
    """A procedural texture of the ground or the walls: ``kind`` in :data:`TEXTURES` blends ``colour_a`` and
    ``colour_b`` (RGB in [0, 1]) with a pattern of ``period`` metres turned by ``angle_deg``; ``phases``
    (radians, one per :data:`NOISE_FREQUENCIES`) shift the waves of the "noise" pattern."""

    kind: str = "checker"
    colour_a: tuple[float, float, float] = (0.8, 0.78, 0.72)
    colour_b: tuple[float, float, float] = (0.45, 0.44, 0.4)
    period: float = 1.0
    angle_deg: float = 0.0
    phases: tuple[float, ...] = (0.0,) * len(NOISE_FREQUENCIES)


@dataclass(frozen=True)
class SceneSpec:
    """Everything that defines one scene (see the module docstring for the frames).

    ``back_wall_z``: the wall plane ``z = back_wall_z``, or None for no back wall (the sky then shows at
    :data:`DEPTH_FAR`). ``side_walls``: (left, right) distances of the planes ``x = -left`` / ``x = right``, None
    for no wall. The light comes from ``light_elevation_deg`` above the horizon, ``light_azimuth_deg`` to the
    right of straight-behind-the-camera."""

    objects: tuple[Primitive, ...] = ()
    camera_height: float = 1.5
    camera_pitch_deg: float = 15.0
    back_wall_z: float | None = 12.0
    side_walls: tuple[float | None, float | None] = (None, None)
    light_elevation_deg: float = 50.0
    light_azimuth_deg: float = 20.0
    ambient: float = 0.35
    ground_texture: Texture = Texture()
    wall_texture: Texture = Texture("stripes", (0.75, 0.72, 0.8), (0.5, 0.48, 0.55), 0.8, 0.0)


@dataclass
class DepthScenes:
    """The parameters of N scenes as arrays (float32 unless noted; ``inf`` = no wall; kind -1 = empty slot).

    The array form of a list of :class:`SceneSpec` (:meth:`spec` and :func:`scenes_from_specs` convert)."""

    camera_height: np.ndarray  # (N,)
    camera_pitch_deg: np.ndarray  # (N,), looking down
    back_wall_z: np.ndarray  # (N,), inf = none
    side_walls: np.ndarray  # (N, 2) distances of the left / right wall, inf = none
    light_elevation_deg: np.ndarray  # (N,)
    light_azimuth_deg: np.ndarray  # (N,)
    ambient: np.ndarray  # (N,)
    kinds: np.ndarray  # int8 (N, MAX_OBJECTS), index into PRIMITIVES, -1 = empty
    positions: np.ndarray  # (N, MAX_OBJECTS, 2) ground position (x, z)
    half_extents: np.ndarray  # (N, MAX_OBJECTS, 3)
    yaw_deg: np.ndarray  # (N, MAX_OBJECTS)
    colours: np.ndarray  # (N, MAX_OBJECTS, 3)
    texture_kinds: np.ndarray  # int8 (N, 2) [ground, walls], index into TEXTURES
    texture_colours: np.ndarray  # (N, 2, 2, 3) [material, a/b, rgb]
    texture_period: np.ndarray  # (N, 2)
    texture_angle_deg: np.ndarray  # (N, 2)
    texture_phases: np.ndarray  # (N, 2, len(NOISE_FREQUENCIES))

    def __len__(self) -> int:
        return len(self.camera_height)

    def subset(self, idx: np.ndarray) -> "DepthScenes":
        return DepthScenes(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @property
    def n_objects(self) -> np.ndarray:
        """int (N,): objects per scene."""
        return (self.kinds >= 0).sum(axis=1)

    def spec(self, i: int) -> SceneSpec:
        """Scene ``i`` as a :class:`SceneSpec` (``render_scene(scenes.spec(i))`` re-renders it exactly)."""
        i = _check_index(i, len(self))

        def opt(v: float) -> float | None:
            return None if math.isinf(v) else float(v)

        def tex(m: int) -> Texture:
            return Texture(TEXTURES[self.texture_kinds[i, m]], _floats(self.texture_colours[i, m, 0]),
                           _floats(self.texture_colours[i, m, 1]), float(self.texture_period[i, m]),
                           float(self.texture_angle_deg[i, m]), _floats(self.texture_phases[i, m]))

        objects = tuple(
            Primitive(PRIMITIVES[self.kinds[i, k]], float(self.positions[i, k, 0]), float(self.positions[i, k, 1]),
                      _floats(self.half_extents[i, k]), float(self.yaw_deg[i, k]), _floats(self.colours[i, k]))
            for k in range(MAX_OBJECTS) if self.kinds[i, k] >= 0)
        return SceneSpec(objects, float(self.camera_height[i]), float(self.camera_pitch_deg[i]),
                         opt(self.back_wall_z[i]), (opt(self.side_walls[i, 0]), opt(self.side_walls[i, 1])),
                         float(self.light_elevation_deg[i]), float(self.light_azimuth_deg[i]), float(self.ambient[i]),
                         tex(GROUND_MATERIAL), tex(WALL_MATERIAL))


def _floats(a: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in a)


def _check_index(i: int, n: int) -> int:
    if not -n <= i < n:
        raise IndexError(f"scene index {i} is out of range for {n} scenes")
    return int(i) % n


def scenes_from_specs(specs: Sequence[SceneSpec]) -> DepthScenes:
    """The array form of hand-written scenes (checked: known kinds, at most MAX_OBJECTS objects, camera above
    the ground, positive sizes)."""
    n = len(specs)
    f32 = np.float32
    out = DepthScenes(
        camera_height=np.array([s.camera_height for s in specs], f32),
        camera_pitch_deg=np.array([s.camera_pitch_deg for s in specs], f32),
        back_wall_z=np.array([math.inf if s.back_wall_z is None else s.back_wall_z for s in specs], f32),
        side_walls=np.array([[math.inf if w is None else w for w in s.side_walls] for s in specs], f32).reshape(n, 2),
        light_elevation_deg=np.array([s.light_elevation_deg for s in specs], f32),
        light_azimuth_deg=np.array([s.light_azimuth_deg for s in specs], f32),
        ambient=np.array([s.ambient for s in specs], f32),
        kinds=np.full((n, MAX_OBJECTS), -1, np.int8),
        positions=np.zeros((n, MAX_OBJECTS, 2), f32),
        half_extents=np.zeros((n, MAX_OBJECTS, 3), f32),
        yaw_deg=np.zeros((n, MAX_OBJECTS), f32),
        colours=np.zeros((n, MAX_OBJECTS, 3), f32),
        texture_kinds=np.zeros((n, 2), np.int8),
        texture_colours=np.zeros((n, 2, 2, 3), f32),
        texture_period=np.ones((n, 2), f32),
        texture_angle_deg=np.zeros((n, 2), f32),
        texture_phases=np.zeros((n, 2, len(NOISE_FREQUENCIES)), f32),
    )
    for i, s in enumerate(specs):
        if s.camera_height <= 0:
            raise ValueError(f"scene {i}: camera_height must be above the ground (> 0), got {s.camera_height}")
        if not 0 <= s.camera_pitch_deg < MAX_PITCH_DEG:
            raise ValueError(f"scene {i}: camera_pitch_deg must be in [0, {MAX_PITCH_DEG}) (looking down, every ray "
                             f"still going forward), got {s.camera_pitch_deg}")
        if len(s.objects) > MAX_OBJECTS:
            raise ValueError(f"scene {i} has {len(s.objects)} objects; at most {MAX_OBJECTS} are supported")
        for k, obj in enumerate(s.objects):
            if obj.kind not in PRIMITIVES:
                raise ValueError(f"scene {i} object {k}: unknown kind {obj.kind!r}; choose one of {PRIMITIVES}")
            if len(obj.half_extents) != 3 or min(obj.half_extents) <= 0:
                raise ValueError(f"scene {i} object {k}: half_extents must be three positive numbers, "
                                 f"got {obj.half_extents}")
            out.kinds[i, k] = PRIMITIVES.index(obj.kind)
            out.positions[i, k] = (obj.x, obj.z)
            out.half_extents[i, k] = obj.half_extents
            out.yaw_deg[i, k] = obj.yaw_deg
            out.colours[i, k] = obj.colour
        for m, tex in ((GROUND_MATERIAL, s.ground_texture), (WALL_MATERIAL, s.wall_texture)):
            if tex.kind not in TEXTURES:
                raise ValueError(f"scene {i}: unknown texture {tex.kind!r}; choose one of {TEXTURES}")
            if tex.period <= 0 or len(tex.phases) != len(NOISE_FREQUENCIES):
                raise ValueError(f"scene {i}: a texture needs period > 0 and {len(NOISE_FREQUENCIES)} phases")
            out.texture_kinds[i, m] = TEXTURES.index(tex.kind)
            out.texture_colours[i, m] = (tex.colour_a, tex.colour_b)
            out.texture_period[i, m] = tex.period
            out.texture_angle_deg[i, m] = tex.angle_deg
            out.texture_phases[i, m] = tex.phases
    return out


# -------------------------------------------------------------------------------------------- depth target
def depth_to_target(depth: Any) -> Any:
    """Depth (metres, > 0) -> network target: normalised log depth, ``[-1, 1]`` for ``[DEPTH_NEAR, DEPTH_FAR]``.

    ``target = 2 (ln depth - ln NEAR) / (ln FAR - ln NEAR) - 1``. Why log depth: the depth metrics (AbsRel,
    delta < 1.25) are *relative* errors, and a fixed error e in the target is the same relative depth error
    ``exp(e ln(FAR / NEAR) / 2) - 1`` at every distance; an even spread of the data over the range too
    (plain depth would crowd the near objects into a sliver, inverse depth the walls). Not clipped: depths
    outside the bounds map outside ``[-1, 1]`` and :func:`target_to_depth` (``clip=False``) inverts it exactly.
    numpy arrays in, numpy out; torch tensors in, torch out."""
    if isinstance(depth, torch.Tensor):
        if (depth <= 0).any():
            raise ValueError("depth must be positive (metres) to map it to a target")
        return 2 * (torch.log(depth) - _LOG_NEAR) / (_LOG_FAR - _LOG_NEAR) - 1
    depth = np.asarray(depth)
    if (depth <= 0).any():
        raise ValueError("depth must be positive (metres) to map it to a target")
    dtype = depth.dtype if np.issubdtype(depth.dtype, np.floating) else np.float64
    return (2 * (np.log(depth.astype(dtype)) - _LOG_NEAR) / (_LOG_FAR - _LOG_NEAR) - 1).astype(dtype)


def target_to_depth(target: Any, clip: bool = True) -> Any:
    """Network target -> depth in metres, the inverse of :func:`depth_to_target`:
    ``depth = NEAR (FAR / NEAR) ** ((target + 1) / 2)``. With ``clip`` (the default, for model outputs) the
    target is first clipped to ``[-1, 1]``, so the depth lies in ``[DEPTH_NEAR, DEPTH_FAR]``."""
    if isinstance(target, torch.Tensor):
        t = target.clamp(-1.0, 1.0) if clip else target
        return torch.exp(_LOG_NEAR + (t + 1) / 2 * (_LOG_FAR - _LOG_NEAR))
    t = np.asarray(target)
    dtype = t.dtype if np.issubdtype(t.dtype, np.floating) else np.float64
    t = np.clip(t, -1.0, 1.0) if clip else t
    return np.exp(_LOG_NEAR + (t.astype(dtype) + 1) / 2 * (_LOG_FAR - _LOG_NEAR)).astype(dtype)


def focal_length_px(image_size: int) -> float:
    """Focal length of the camera in pixels: ``f = image_size / (2 tan(fov / 2))``."""
    return image_size / (2 * TAN_HALF_FOV)


# ------------------------------------------------------------------------------------------------ sampling
def _uniform(rng: np.random.Generator, bounds: tuple[float, float], shape: Any) -> np.ndarray:
    return rng.uniform(bounds[0], bounds[1], shape)


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV (all in [0, 1]) -> RGB ``(..., 3)`` in [0, 1]."""
    k = np.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], axis=-1)
    return v[..., None] - (v * s)[..., None] * np.clip(np.minimum(k, 4 - k), 0, 1)


def _bounding_radius(kinds: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Radius of each object's footprint circle on the ground (boxes: half the diagonal of their base)."""
    return np.where(kinds == BOX, np.hypot(half[..., 0], half[..., 2]), half[..., 0])


def _sample_half_extents(rng: np.random.Generator, kinds: np.ndarray) -> np.ndarray:
    shape = kinds.shape
    sphere_r = _uniform(rng, SPHERE_RADIUS_RANGE, shape)
    box_half = _uniform(rng, BOX_HALF_SIDE_RANGE, (*shape, 3))
    cyl_r, cone_r = _uniform(rng, CYLINDER_RADIUS_RANGE, shape), _uniform(rng, CONE_RADIUS_RANGE, shape)
    upright_h = _uniform(rng, UPRIGHT_HALF_HEIGHT_RANGE, shape)
    radius = np.select([kinds == SPHERE, kinds == CYLINDER, kinds == CONE], [sphere_r, cyl_r, cone_r], 0.0)
    height = np.where(kinds == SPHERE, sphere_r, upright_h)
    round_ = np.stack([radius, height, radius], axis=-1)
    return np.where((kinds == BOX)[..., None], box_half, round_)


def _place_objects(rng: np.random.Generator, kinds: np.ndarray, radius: np.ndarray, camera_height: np.ndarray,
                   pitch: np.ndarray, side_walls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ground positions (N, K, 2) in view and between the walls, with disjoint footprint circles; objects that
    still touch after MAX_PLACEMENT_ROUNDS redraws are dropped (kind -1)."""
    n, k = kinds.shape
    # Nearest z whose ground point projects at most OBJECT_BOTTOM_NDC down the image: depression angle of the
    # ray to (0, 0, z) is atan(h / z) and must stay below pitch + atan(OBJECT_BOTTOM_NDC tan(fov / 2)).
    z_lo = np.maximum(OBJECT_Z_RANGE[0],
                      camera_height / np.tan(pitch + math.atan(OBJECT_BOTTOM_NDC * TAN_HALF_FOV)))[:, None]
    x_lo = -side_walls[:, 0:1] + radius + WALL_MARGIN
    x_hi = side_walls[:, 1:2] - radius - WALL_MARGIN

    def draw(rows: np.ndarray) -> np.ndarray:
        z = z_lo[rows] + rng.random((len(rows), k)) * (OBJECT_Z_RANGE[1] - z_lo[rows])
        z_depth = z * np.cos(pitch[rows, None]) + camera_height[rows, None] * np.sin(pitch[rows, None])
        half_width = OBJECT_LATERAL_FRACTION * z_depth * TAN_HALF_FOV
        x = np.clip(rng.uniform(-1, 1, (len(rows), k)) * half_width, x_lo[rows], x_hi[rows])
        return np.stack([x, z], axis=-1)

    present = kinds >= 0
    positions = draw(np.arange(n))
    todo = np.arange(n)
    pairs = [(a, b) for a in range(k) for b in range(a + 1, k)]
    for _ in range(MAX_PLACEMENT_ROUNDS):
        p, r, on = positions[todo], radius[todo], present[todo]
        clash = np.zeros(len(todo), dtype=bool)
        for a, b in pairs:
            dist = np.hypot(*(p[:, a] - p[:, b]).T)
            clash |= on[:, a] & on[:, b] & (dist < r[:, a] + r[:, b] + OBJECT_GAP)
        todo = todo[clash]
        if todo.size == 0:
            break
        positions[todo] = draw(todo)
    else:  # drop the later objects of the few scenes that still clash (never the first one)
        kinds[todo, 1:] = -1
    return positions, kinds


def sample_scenes(rng: np.random.Generator, n: int, cfg: DepthWorldConfig = DepthWorldConfig()) -> DepthScenes:
    """Draw the parameters of ``n`` random scenes (vectorised; the ranges are the module's *_RANGE constants)."""
    if not 1 <= cfg.max_objects <= MAX_OBJECTS:
        raise ValueError(f"DepthWorldConfig.max_objects must be in 1..{MAX_OBJECTS}, got {cfg.max_objects}")
    k = MAX_OBJECTS
    height = _uniform(rng, CAMERA_HEIGHT_RANGE, n)
    pitch_deg = _uniform(rng, CAMERA_PITCH_DEG_RANGE, n)
    back = _uniform(rng, BACK_WALL_Z_RANGE, n)
    side = _uniform(rng, SIDE_WALL_X_RANGE, (n, 2))
    has_side = rng.random((n, 2)) < SIDE_WALL_PROBABILITY
    if not cfg.walls:
        back[:] = np.inf
        has_side[:] = False
    side = np.where(has_side, side, np.inf)
    n_objects = rng.integers(1, cfg.max_objects + 1, n)
    kinds = rng.integers(0, len(PRIMITIVES), (n, k))
    kinds = np.where(np.arange(k)[None, :] < n_objects[:, None], kinds, -1).astype(np.int8)
    half = _sample_half_extents(rng, kinds)
    yaw = np.where(kinds == BOX, _uniform(rng, BOX_YAW_DEG_RANGE, (n, k)), 0.0)
    positions, kinds = _place_objects(rng, kinds, _bounding_radius(kinds, half), height, np.radians(pitch_deg),
                                      side)
    hue = rng.random((n, k))
    colours = _hsv_to_rgb(hue, _uniform(rng, OBJECT_SATURATION_RANGE, (n, k)),
                          _uniform(rng, OBJECT_VALUE_RANGE, (n, k)))
    tex_a = _hsv_to_rgb(rng.random((n, 2)), _uniform(rng, TEXTURE_SATURATION_RANGE, (n, 2)),
                        _uniform(rng, TEXTURE_VALUE_RANGE, (n, 2)))
    tex_b = tex_a * _uniform(rng, TEXTURE_CONTRAST_RANGE, (n, 2, 1))
    empty = kinds < 0
    f32 = np.float32
    return DepthScenes(
        camera_height=height.astype(f32), camera_pitch_deg=pitch_deg.astype(f32), back_wall_z=back.astype(f32),
        side_walls=side.astype(f32),
        light_elevation_deg=_uniform(rng, LIGHT_ELEVATION_DEG_RANGE, n).astype(f32),
        light_azimuth_deg=_uniform(rng, LIGHT_AZIMUTH_DEG_RANGE, n).astype(f32),
        ambient=_uniform(rng, AMBIENT_RANGE, n).astype(f32),
        kinds=kinds,
        positions=np.where(empty[..., None], 0.0, positions).astype(f32),
        half_extents=np.where(empty[..., None], 0.0, half).astype(f32),
        yaw_deg=np.where(empty, 0.0, yaw).astype(f32),
        colours=np.where(empty[..., None], 0.0, colours).astype(f32),
        texture_kinds=rng.integers(0, len(TEXTURES), (n, 2)).astype(np.int8),
        texture_colours=np.stack([tex_a, tex_b], axis=2).astype(f32),
        texture_period=_uniform(rng, TEXTURE_PERIOD_RANGE, (n, 2)).astype(f32),
        texture_angle_deg=_uniform(rng, TEXTURE_ANGLE_DEG_RANGE, (n, 2)).astype(f32),
        texture_phases=rng.uniform(0, 2 * math.pi, (n, 2, len(NOISE_FREQUENCIES))).astype(f32),
    )


# ---------------------------------------------------------------------------------------- ray intersections
# Each function returns the nearest ray parameter t > RAY_EPSILON of a hit (inf where none), for rays
# origin + t * direction given as broadcastable component arrays; (ox, oy, oz) is the origin MINUS the object's
# reference point (sphere: centre; cylinder: base centre; cone: apex; box: centre, in the box's frame).
_INF = np.float32(np.inf)


def _hit_sphere(ox, oy, oz, dx, dy, dz, dd, r):
    """|o + t d|^2 = r^2  ->  t = (-b - sqrt(b^2 - |d|^2 c)) / |d|^2 with b = o.d, c = |o|^2 - r^2."""
    b = ox * dx + oy * dy + oz * dz
    c = ox * ox + oy * oy + oz * oz - r * r
    disc = b * b - dd * c
    t = (-b - np.sqrt(np.maximum(disc, 0))) / dd
    return np.where((disc >= 0) & (t > RAY_EPSILON), t, _INF)


def _hit_cylinder(ox, oy, oz, dx, dy, dz, r, height):
    """Side: (ox + t dx)^2 + (oz + t dz)^2 = r^2 with 0 <= y <= height; top cap: y = height inside the circle.
    (The bottom cap lies on the ground and is never seen from above it.)"""
    a = dx * dx + dz * dz
    b = ox * dx + oz * dz
    c = ox * ox + oz * oz - r * r
    disc = b * b - a * c
    t_side = (-b - np.sqrt(np.maximum(disc, 0))) / a
    y = oy + t_side * dy
    t = np.where((disc >= 0) & (t_side > RAY_EPSILON) & (y >= 0) & (y <= height), t_side, _INF)
    t_cap = (height - oy) / dy
    xc, zc = ox + t_cap * dx, oz + t_cap * dz
    return np.where((t_cap > RAY_EPSILON) & (xc * xc + zc * zc <= r * r) & (t_cap < t), t_cap, t)


def _hit_cone(ox, oy, oz, dx, dy, dz, r, height):
    """Apex-relative: x^2 + z^2 = k^2 y^2 (k = r / height) with -height <= y <= 0 - a quadratic, both roots."""
    k2 = (r / height) ** 2
    a = dx * dx + dz * dz - k2 * dy * dy
    b = ox * dx + oz * dz - k2 * oy * dy
    c = ox * ox + oz * oz - k2 * oy * oy
    disc = b * b - a * c
    sq = np.sqrt(np.maximum(disc, 0))
    t = _INF
    for root in ((-b - sq) / a, (-b + sq) / a):
        y = oy + root * dy
        ok = (disc >= 0) & (root > RAY_EPSILON) & (y >= -height) & (y <= 0)
        t = np.where(ok & (root < t), root, t)
    return t


def _hit_box(ox, oy, oz, dx, dy, dz, half, cos_yaw, sin_yaw):
    """Slab method in the box's own frame (world -> local: x_l = c x - s z, z_l = s x + c z)."""
    lx, lz = cos_yaw * ox - sin_yaw * oz, sin_yaw * ox + cos_yaw * oz
    ldx, ldz = cos_yaw * dx - sin_yaw * dz, sin_yaw * dx + cos_yaw * dz
    t_near, t_far = None, None
    for o, d, h in ((lx, ldx, half[0]), (oy, dy, half[1]), (lz, ldz, half[2])):
        inv = 1 / d
        t1, t2 = (-h - o) * inv, (h - o) * inv
        lo, hi = np.fmin(t1, t2), np.fmax(t1, t2)
        t_near = lo if t_near is None else np.fmax(t_near, lo)
        t_far = hi if t_far is None else np.fmin(t_far, hi)
    return np.where((t_near <= t_far) & (t_near > RAY_EPSILON), t_near, _INF)


def _object_frame(kind: int, positions: np.ndarray, half: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World coordinates of the reference point each _hit_* function measures from."""
    x, z = positions[..., 0], positions[..., 1]
    y = {SPHERE: half[..., 1], BOX: half[..., 1], CYLINDER: np.zeros_like(x), CONE: 2 * half[..., 1]}[kind]
    return x, y, z


def _hit(kind: int, ox, oy, oz, dx, dy, dz, dd, half: np.ndarray, yaw_rad: np.ndarray):
    """Dispatch on the primitive kind; ``half`` and ``yaw_rad`` broadcast like the origin components."""
    if kind == SPHERE:
        return _hit_sphere(ox, oy, oz, dx, dy, dz, dd, half[0])
    if kind == BOX:
        return _hit_box(ox, oy, oz, dx, dy, dz, half, np.cos(yaw_rad), np.sin(yaw_rad))
    if kind == CYLINDER:
        return _hit_cylinder(ox, oy, oz, dx, dy, dz, half[0], 2 * half[1])
    return _hit_cone(ox, oy, oz, dx, dy, dz, half[0], 2 * half[1])


def _normals(kind: int, px, py, pz, positions: np.ndarray, half: np.ndarray, yaw_rad: np.ndarray):
    """Outward unit normals at surface points (per-pixel arrays; object parameters gathered per pixel)."""
    x0, y0, z0 = _object_frame(kind, positions, half)
    qx, qy, qz = px - x0, py - y0, pz - z0
    if kind == SPHERE:
        nx, ny, nz = qx, qy, qz
    elif kind == BOX:
        c, s = np.cos(yaw_rad), np.sin(yaw_rad)
        lx, lz = c * qx - s * qz, s * qx + c * qz
        rel = np.stack([np.abs(lx) / half[..., 0], np.abs(qy) / half[..., 1], np.abs(lz) / half[..., 2]])
        face = rel.argmax(axis=0)  # the face the point lies on: the largest |local coordinate| / half side
        fx, fy, fz = (face == 0) * np.sign(lx), (face == 1) * np.sign(qy), (face == 2) * np.sign(lz)
        nx, ny, nz = c * fx + s * fz, fy.astype(px.dtype), -s * fx + c * fz
    elif kind == CYLINDER:
        radial = np.hypot(qx, qz)
        top = np.abs(qy - 2 * half[..., 1]) < np.abs(radial - half[..., 0])
        nx, ny, nz = np.where(top, 0, qx), np.where(top, 1, 0), np.where(top, 0, qz)
    else:
        k2 = (half[..., 0] / (2 * half[..., 1])) ** 2
        nx, ny, nz = qx, -k2 * qy, qz  # gradient of x^2 + z^2 - k^2 y^2 (apex-relative y <= 0)
    norm = np.sqrt(nx * nx + ny * ny + nz * nz) + NORMAL_EPSILON
    return (nx / norm).astype(np.float32), (ny / norm).astype(np.float32), (nz / norm).astype(np.float32)


# Columns of the per-(scene, material) texture table that _texture reads (one row per scene and material, so
# the trigonometry of the angles is done once per scene, not once per pixel).
_COS, _SIN, _INV_PERIOD = 0, 1, 2
_WAVE_X = 3  # the noise waves' wave vectors: x components in columns 3.., then z components, then phases
_N_WAVES = len(NOISE_FREQUENCIES)
_WAVE_Z, _PHASE = _WAVE_X + _N_WAVES, _WAVE_X + 2 * _N_WAVES
_TABLE_COLUMNS = _PHASE + _N_WAVES


def _texture_table(sc: DepthScenes) -> np.ndarray:
    """float32 ``(N * 2, _TABLE_COLUMNS)``: row ``scene * 2 + material`` holds cos / sin of the pattern angle,
    1 / period and the noise waves ``2 pi f_w / period (cos theta_w, sin theta_w)`` with their phases."""
    angle = np.radians(sc.texture_angle_deg.astype(np.float64)).reshape(-1)
    inv_period = 1.0 / sc.texture_period.astype(np.float64).reshape(-1)
    theta = angle[:, None] + np.radians(NOISE_ANGLE_STEP_DEG) * np.arange(_N_WAVES)
    k = 2 * np.pi * np.asarray(NOISE_FREQUENCIES) * inv_period[:, None]
    return np.concatenate([np.cos(angle)[:, None], np.sin(angle)[:, None], inv_period[:, None], k * np.cos(theta),
                           k * np.sin(theta), sc.texture_phases.reshape(-1, _N_WAVES)], axis=1).astype(np.float32)


def _texture(kind: int, u: np.ndarray, v: np.ndarray, params: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Pattern value in [-1, 1] at surface coordinates (u, v) (metres), ``params`` the pixels' rows of
    :func:`_texture_table`; faded to 0 where the pixel footprint exceeds about half the pattern's finest
    wavelength (fade 1 below a quarter of it, 0 above a half)."""
    ca, sa, inv = params[:, _COS], params[:, _SIN], params[:, _INV_PERIOD]
    if kind == CHECKER:  # squares of side `period` in the frame turned by the angle
        ur, vr = ca * u + sa * v, ca * v - sa * u
        s = np.sign(np.sin(np.pi * inv * ur) * np.sin(np.pi * inv * vr))
        wavelength = 2 / inv
    elif kind == STRIPES:  # stripes of width period / 2
        s = np.sign(np.sin(2 * np.pi * inv * (ca * u + sa * v)))
        wavelength = 1 / inv
    else:  # NOISE: summed sine waves sin(k_w . (u, v) + phase_w)
        s = 0
        for w in range(_N_WAVES):
            s = s + np.sin(params[:, _WAVE_X + w] * u + params[:, _WAVE_Z + w] * v + params[:, _PHASE + w])
        s = np.clip(s * (NOISE_GAIN / _N_WAVES), -1, 1)
        wavelength = 1 / (inv * max(NOISE_FREQUENCIES))
    fade = np.clip((wavelength / 2 - footprint) / (wavelength / 4), 0, 1)
    return s * fade


# ------------------------------------------------------------------------------------------------ rendering
@dataclass
class Rendered:
    """Rendered scenes: images uint8 (N, H, W, 3), depth float32 (N, H, W) z-depth in metres, surface uint8
    (N, H, W) (index into :data:`SURFACES`)."""

    images: np.ndarray
    depth: np.ndarray
    surface: np.ndarray


def _pixel_grid(image_size: int) -> np.ndarray:
    """Normalised image coordinates of the pixel centres: ``(2 (i + 0.5) / S - 1) tan(fov / 2)``."""
    return ((2 * (np.arange(image_size) + 0.5) / image_size - 1) * TAN_HALF_FOV).astype(np.float32)


def _render_chunk(sc: DepthScenes, image_size: int, shadows: bool) -> Rendered:
    n, s = len(sc), image_size
    f32 = np.float32
    grid = _pixel_grid(s)
    pitch = np.radians(sc.camera_pitch_deg.astype(np.float64))
    cp, sp = np.cos(pitch).astype(f32)[:, None, None], np.sin(pitch).astype(f32)[:, None, None]
    h = sc.camera_height[:, None, None]
    # World ray directions, their component along the optical axis = 1. D_x depends on the column only, D_y and
    # D_z on the scene and the row: kept in these small broadcastable shapes.
    dx = grid[None, None, :]  # (1, 1, S)
    dy = -grid[None, :, None] * cp - sp  # (n, S, 1)
    dz = cp - grid[None, :, None] * sp  # (n, S, 1)
    dd = dx * dx + dy * dy + dz * dz  # (n, S, S) = |D|^2

    # ---- planes: sky (far plane), ground, back wall, side walls. Nearest hit wins; ties keep the earlier.
    depth = np.full((n, s, s), DEPTH_FAR, dtype=f32)
    surface = np.full((n, s, s), SKY, dtype=np.uint8)

    def keep(t: np.ndarray, sid: int, rows: Any = slice(None)) -> None:
        better = t < depth[rows]
        depth[rows] = np.where(better, t, depth[rows])
        surface[rows] = np.where(better, np.uint8(sid), surface[rows])

    keep(np.where(dy < 0, -h / dy, _INF), GROUND)
    keep(np.where(dz > 0, sc.back_wall_z[:, None, None] / dz, _INF), BACK_WALL)
    keep(np.where(dx < 0, -sc.side_walls[:, 0, None, None] / dx, _INF), LEFT_WALL)
    keep(np.where(dx > 0, sc.side_walls[:, 1, None, None] / dx, _INF), RIGHT_WALL)

    # ---- objects: per slot and kind, on the scenes that have one
    yaw = np.radians(sc.yaw_deg).astype(f32)
    slots = [(k, kind, rows) for k in range(MAX_OBJECTS) for kind in range(len(PRIMITIVES))
             if (rows := np.flatnonzero(sc.kinds[:, k] == kind)).size]
    for k, kind, rows in slots:
        half = [sc.half_extents[rows, k, a, None, None] for a in range(3)]
        x0, y0, z0 = _object_frame(kind, sc.positions[rows, k], sc.half_extents[rows, k])
        t = _hit(kind, -x0[:, None, None], h[rows] - y0[:, None, None], -z0[:, None, None], dx, dy[rows], dz[rows],
                 dd[rows], half, yaw[rows, k, None, None])
        keep(t, OBJECT_SURFACE + k, rows)

    # ---- surface points and normals
    px, py, pz = depth * dx, h + depth * dy, depth * dz
    nx, ny, nz = (np.zeros((n, s, s), f32) for _ in range(3))
    ny[surface == GROUND] = 1
    nz[surface == BACK_WALL] = -1
    nx[surface == LEFT_WALL] = 1
    nx[surface == RIGHT_WALL] = -1
    flat = surface.reshape(-1)
    pxf, pyf, pzf, nxf, nyf, nzf = (a.reshape(-1) for a in (px, py, pz, nx, ny, nz))
    per_scene = s * s
    object_pixels = []
    for k in range(MAX_OBJECTS):
        pix = np.flatnonzero(flat == OBJECT_SURFACE + k)
        object_pixels.append(pix)
        q = pix // per_scene
        for kind in range(len(PRIMITIVES)):
            sel = pix[sc.kinds[q, k] == kind]
            if sel.size:
                qs = sel // per_scene
                nxf[sel], nyf[sel], nzf[sel] = _normals(kind, pxf[sel], pyf[sel], pzf[sel], sc.positions[qs, k],
                                                        sc.half_extents[qs, k], yaw[qs, k])

    # ---- albedo: textures of the ground (u, v) = (x, z) and the walls: back (x, y), sides (z, y); flat objects
    albedo = np.zeros((n * s * s, 3), f32)
    planes = np.flatnonzero((flat >= GROUND) & (flat < OBJECT_SURFACE))
    ps, sid = planes // per_scene, flat[planes]
    on_ground = sid == GROUND
    material = np.where(on_ground, GROUND_MATERIAL, WALL_MATERIAL)
    side = (sid == LEFT_WALL) | (sid == RIGHT_WALL)
    u = np.where(side, pzf[planes], pxf[planes])
    v = np.where(on_ground, pzf[planes], pyf[planes])
    cos_inc = (np.abs(nx * dx + ny * dy + nz * dz) / np.sqrt(dd)).reshape(-1)[planes]  # |n . D| / |D|
    footprint = depth.reshape(-1)[planes] * (2 * TAN_HALF_FOV / s) / np.maximum(cos_inc, MIN_INCIDENCE_COS)
    row = ps * 2 + material  # the pixel's (scene, material) row of the texture tables
    tex_kind = sc.texture_kinds.reshape(-1)[row]
    table = _texture_table(sc)
    pattern = np.zeros(len(planes), f32)
    for kind in range(len(TEXTURES)):
        sel = np.flatnonzero(tex_kind == kind)
        if sel.size:
            pattern[sel] = _texture(kind, u[sel], v[sel], np.take(table, row[sel], axis=0), footprint[sel])
    colours = np.take(sc.texture_colours.reshape(-1, 6), row, axis=0)  # (P, 6): colour a, colour b
    mix = (0.5 - 0.5 * pattern)[:, None]  # pattern +1 -> colour a, -1 -> colour b
    albedo[planes] = colours[:, :3] + mix * (colours[:, 3:] - colours[:, :3])
    for k, pix in enumerate(object_pixels):
        albedo[pix] = sc.colours[pix // per_scene, k]

    # ---- light: direction TO the light; azimuth 0 = from behind the camera (-z), positive = from the right (+x)
    el, az = np.radians(sc.light_elevation_deg), np.radians(sc.light_azimuth_deg)
    lx, ly, lz = ((np.cos(el) * np.sin(az)).astype(f32)[:, None, None], np.sin(el).astype(f32)[:, None, None],
                  (-np.cos(el) * np.cos(az)).astype(f32)[:, None, None])
    lambert = np.maximum(nx * lx + ny * ly + nz * lz, 0)
    if shadows:  # one shadow ray per pixel towards the light; only objects block it
        lit = np.ones((n, s, s), dtype=bool)
        ox, oy, oz = px + SHADOW_BIAS * nx, py + SHADOW_BIAS * ny, pz + SHADOW_BIAS * nz
        for k, kind, rows in slots:
            half = [sc.half_extents[rows, k, a, None, None] for a in range(3)]
            x0, y0, z0 = _object_frame(kind, sc.positions[rows, k], sc.half_extents[rows, k])
            t = _hit(kind, ox[rows] - x0[:, None, None], oy[rows] - y0[:, None, None], oz[rows] - z0[:, None, None],
                     lx[rows], ly[rows], lz[rows], f32(1), half, yaw[rows, k, None, None])
            lit[rows] &= np.isinf(t)
        lambert = lambert * lit
    ambient = sc.ambient[:, None, None]
    shade = (ambient + (1 - ambient) * lambert).reshape(-1)
    rgb = albedo * shade[:, None]

    sky = np.flatnonzero(flat == SKY)
    if sky.size:  # sky gradient by the ray's elevation; the sky is not shaded
        up = np.clip((dy / np.sqrt(dd)).reshape(-1)[sky], 0, 1)[:, None]
        rgb[sky] = np.asarray(SKY_HORIZON_RGB, f32) + up * (np.asarray(SKY_ZENITH_RGB, f32)
                                                            - np.asarray(SKY_HORIZON_RGB, f32))
    images = np.rint(np.clip(rgb, 0, 1) * RGB_MAX).astype(np.uint8).reshape(n, s, s, 3)
    return Rendered(images, depth, surface)


def render_scenes(scenes: DepthScenes, image_size: int = REFERENCE_SIZE, shadows: bool = True,
                  workers: int = 1) -> Rendered:
    """Ray-cast a batch of scenes: one primary ray per pixel centre, nearest hit, then one shadow ray.

    Chunks of RENDER_CHUNK scenes (at 32 x 32; fewer at larger sizes) are rendered on ``workers`` threads. Every
    pixel depends on its own scene only, so the result does not depend on the chunking or the threads. One
    thread is the default: numpy releases the GIL in its loops, so two threads gain ~10 % on an idle 2-core
    machine, but lose ~40 % on a busy one (measured)."""
    if not isinstance(image_size, (int, np.integer)) or image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be an integer of at least {MIN_IMAGE_SIZE}, got {image_size!r}")
    n, s = len(scenes), int(image_size)
    out = Rendered(np.empty((n, s, s, 3), np.uint8), np.empty((n, s, s), np.float32), np.empty((n, s, s), np.uint8))
    chunk = max(1, RENDER_CHUNK * REFERENCE_SIZE ** 2 // s ** 2)
    starts = range(0, n, chunk)

    def work(start: int) -> None:
        stop = min(start + chunk, n)
        part = _render_chunk(scenes.subset(np.arange(start, stop)), s, shadows)
        out.images[start:stop], out.depth[start:stop], out.surface[start:stop] = part.images, part.depth, part.surface

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if workers > 1 and len(starts) > 1:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(work, starts))
        else:
            for start in starts:
                work(start)
    return out


def render_scene(spec: SceneSpec = SceneSpec(), image_size: int = REFERENCE_SIZE, shadows: bool = True) -> Rendered:
    """Render one hand-written scene; returns :class:`Rendered` with a batch of one (``.images[0]`` etc.).

    Example: a red sphere of radius 0.5 five metres ahead, in a room with a back wall::

        render_scene(SceneSpec(objects=(sphere(0.0, 5.0, 0.5),), camera_height=1.5, camera_pitch_deg=10))"""
    return render_scenes(scenes_from_specs([spec]), image_size, shadows, workers=1)


# ---------------------------------------------------------------------------------------------- the splits
@dataclass
class DepthWorldSplit:
    """One split of DepthWorld: images, exact depth, surface ids and the scene parameters."""

    split: str
    images: np.ndarray  # uint8 (N, H, W, 3)
    depth: np.ndarray  # float32 (N, H, W): z-depth in metres, DEPTH_NEAR < depth <= DEPTH_FAR
    surface: np.ndarray  # uint8 (N, H, W): index into SURFACES
    scenes: DepthScenes = field(repr=False)

    def __len__(self) -> int:
        return len(self.images)

    def scene(self, i: int) -> SceneSpec:
        """Scene ``i``'s parameters; ``render_scene(split.scene(i), image_size)`` reproduces its pixels."""
        return self.scenes.spec(i)

    def images_tensor(self) -> torch.Tensor:
        """All images as float32 ``(N, 3, H, W)`` in ``[-1, 1]``."""
        return _images_to_tensor(self.images)

    def depth_tensor(self) -> torch.Tensor:
        """All depth maps as float32 ``(N, 1, H, W)`` in metres."""
        return torch.from_numpy(np.array(self.depth, dtype=np.float32))[:, None]

    def target_tensor(self) -> torch.Tensor:
        """All depth maps as network targets, float32 ``(N, 1, H, W)`` in ``[-1, 1]`` (:func:`depth_to_target`)."""
        return depth_to_target(self.depth_tensor())

    def subset(self, which: np.ndarray) -> "DepthWorldSplit":
        """The samples selected by a boolean mask or an index array."""
        idx = np.flatnonzero(which) if np.asarray(which).dtype == bool else np.asarray(which, dtype=np.int64)
        return DepthWorldSplit(self.split, self.images[idx], self.depth[idx], self.surface[idx],
                               self.scenes.subset(idx))


def _images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(..., H, W, 3)`` -> float32 ``(..., 3, H, W)`` in ``[-1, 1]`` (a fresh, writable copy)."""
    scaled = images.astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(scaled, -1, -3)))


def split_seed(split: str, cfg: DepthWorldConfig) -> int:
    """The seed of ``split``: ``cfg.seed * SPLIT_SEED_STRIDE + SPLITS.index(split)``."""
    if split not in SPLITS:
        raise ValueError(f"unknown DepthWorld split {split!r}; choose one of {', '.join(SPLITS)}")
    return cfg.seed * SPLIT_SEED_STRIDE + SPLITS.index(split)


def generate_split(split: str, cfg: DepthWorldConfig = DepthWorldConfig(), workers: int = 1) -> DepthWorldSplit:
    """Sample and render one split. Same ``cfg`` -> the same bytes (whatever ``workers``)."""
    seed = split_seed(split, cfg)
    n = getattr(cfg, f"n_{split}")
    if not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"DepthWorldConfig.n_{split} must be a positive integer, got {n!r}; "
                         f"e.g. DepthWorldConfig(n_{split}=100)")
    if not isinstance(cfg.image_size, (int, np.integer)) or cfg.image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"DepthWorldConfig.image_size must be an integer >= {MIN_IMAGE_SIZE}, got {cfg.image_size!r}")
    scenes = sample_scenes(np.random.default_rng(seed), int(n), cfg)
    r = render_scenes(scenes, cfg.image_size, cfg.shadows, workers)
    return DepthWorldSplit(split, r.images, r.depth, r.surface, scenes)


@functools.lru_cache(maxsize=8)
def load_depthworld(split: str, cfg: DepthWorldConfig = DepthWorldConfig()) -> DepthWorldSplit:
    """:func:`generate_split`, cached in memory per ``(split, cfg)``. The arrays are shared and read-only."""
    data = generate_split(split, cfg)
    for arrays in (vars(data), vars(data.scenes)):
        for value in arrays.values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
    return data


class DepthWorldDataset(Dataset):
    """A DepthWorld split for a ``DataLoader``: ``{"image": (3, H, W) in [-1, 1], "depth": (1, H, W) metres,
    "target": (1, H, W) in [-1, 1], "index"}``."""

    def __init__(self, split: str, cfg: DepthWorldConfig = DepthWorldConfig()) -> None:
        self.data = load_depthworld(split, cfg)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> dict[str, Any]:
        i = _check_index(index, len(self.data))
        depth = torch.from_numpy(np.array(self.data.depth[i], dtype=np.float32))[None]
        return {"image": _images_to_tensor(self.data.images[i]), "depth": depth, "target": depth_to_target(depth),
                "index": i}


def benchmark(n: int = 20_000, image_size: int = REFERENCE_SIZE, walls: bool = True, shadows: bool = True,
              workers: int = 1) -> float:
    """Scenes per second of :func:`generate_split` (sampling + rendering) for ``n`` scenes; prints the figure.

    ``python -c "from crossflow_mini.datasets.depthworld import benchmark; benchmark()"``"""
    cfg = DepthWorldConfig(n_train=n, image_size=image_size, walls=walls, shadows=shadows)
    start = time.perf_counter()
    generate_split("train", cfg, workers)
    rate = n / (time.perf_counter() - start)
    print(f"DepthWorld: {rate:,.0f} scenes/s ({n} scenes, {image_size} x {image_size}, walls={walls}, "
          f"shadows={shadows}, {workers} thread(s))")
    return rate


__all__ = [
    "DepthWorldConfig", "DepthWorldSplit", "DepthWorldDataset", "DepthScenes", "SceneSpec", "Primitive", "Texture",
    "Rendered", "sphere", "box", "cylinder", "cone", "sample_scenes", "scenes_from_specs", "render_scenes",
    "render_scene", "generate_split", "load_depthworld", "split_seed", "depth_to_target", "target_to_depth",
    "focal_length_px", "benchmark", "FIELD_OF_VIEW_DEG", "DEPTH_NEAR", "DEPTH_FAR", "PRIMITIVES", "TEXTURES",
    "SURFACES", "SKY", "GROUND", "BACK_WALL", "LEFT_WALL", "RIGHT_WALL", "OBJECT_SURFACE", "MAX_OBJECTS", "SPLITS",
]
