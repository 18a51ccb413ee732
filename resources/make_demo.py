"""Render the bundled WSV Studio demo data set into ``resources/demo/`` (run: uv run python resources/make_demo.py).

The very first launch of WSV Studio opens this small data set, so that a new user at once sees real-looking
images, classes, ground truth and example scribbles, and can watch the network learn live from them. Every pixel
is procedurally rendered here from fixed seeds (garden close-ups: soil/grass noise background with depth-of-field
blur, leaves with midribs and veins, flowers of rotated-ellipse petals, soft shadows, sensor noise); no
third-party images or data are used or copied, so the demo ships with the project. Deterministic, about 2 s.

Layout (the app's dataset-folder format): classes.txt (line i = class i: background, flower, leaf);
images/ID.jpg (RGB, JPEG quality 92); masks/ID.png ('L' exact ground truth: class index of the rendered
geometry, as objects are composited from the very coverage maps that define the mask; 255 marks the ~1 px
anti-aliased border ring where no single class covers >= 85 % of the pixel); scribbles/ID.png ('L' quick
human-like strokes, class index on stroke pixels, 255 = unlabeled, clipped to where the mask equals the stroke's
class; only garden01..03); boxes/garden04.json (the flowers of garden04 boxed, as a user would with two clicks
each, to show box supervision next to scribbles); train.txt and test.txt (image IDs).
"""
import pathlib

import json

import cv2
import numpy as np
from PIL import Image

from engine.datasets.weak_labels import boxes_from_mask

OUT = pathlib.Path(__file__).resolve().parent / "demo"
CLASSES = ["background", "flower", "leaf"]
SS = 4  # supersampling factor of the coverage maps (anti-aliasing)
# petal colour at the base, petal colour at the tip, centre disk colour (RGB, 0..1)
RED = ((0.50, 0.02, 0.06), (0.93, 0.13, 0.10), (0.96, 0.76, 0.16))
YELLOW = ((0.88, 0.50, 0.02), (1.00, 0.86, 0.18), (0.30, 0.15, 0.05))
VIOLET = ((0.28, 0.07, 0.42), (0.63, 0.38, 0.86), (0.98, 0.82, 0.22))
PINK = ((0.90, 0.38, 0.58), (0.99, 0.95, 0.95), (0.95, 0.76, 0.20))
BOXED = ("garden04",)
"""scenes whose flowers get boxes instead of scribbles"""
# id, (width, height), flower palettes, number of leaves, scribbled?, split
SCENES = [("garden01", (360, 240), [RED, RED], 6, True, "train"),
          ("garden02", (320, 240), [YELLOW], 5, True, "train"),
          ("garden03", (240, 320), [VIOLET, VIOLET], 5, True, "train"),
          ("garden04", (320, 240), [PINK, PINK], 5, False, "train"),
          ("garden05", (360, 240), [RED, YELLOW, VIOLET], 6, False, "test"),
          ("garden06", (320, 240), [PINK, VIOLET], 5, False, "test")]


def fbm(rng, h, w, scales, gain=0.6):
    """Multi-scale value noise: bicubically upsampled random grids, coarse to fine, normalised to unit std."""
    out, amp = np.zeros((h, w), np.float32), 1.0
    for s in scales:
        g = rng.standard_normal((h // s + 3, w // s + 3)).astype(np.float32)
        out += amp * cv2.resize(g, ((w // s + 3) * s, (h // s + 3) * s), interpolation=cv2.INTER_CUBIC)[:h, :w]
        amp *= gain
    return (out - out.mean()) / (out.std() + 1e-6)


def smooth(a, lo, hi):
    t = np.clip((a - lo) / (hi - lo), 0, 1)
    return t * t * (3 - 2 * t)


def cover(h, w, draw, *args):
    """Coverage (0..1) of a shape drawn with value 255 by ``draw(canvas, *args)`` on a supersampled canvas."""
    draw(c := np.zeros((h * SS, w * SS), np.uint8), *args)
    return cv2.resize(c, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def fill_poly(c, pts):
    cv2.fillPoly(c, [np.round((pts * SS - 0.5) * 4).astype(np.int32)], 255, cv2.LINE_8, 2)


def fill_ellipse(c, ctr, axes, deg):
    q = np.round(np.array([ctr[0] * SS - .5, ctr[1] * SS - .5, axes[0] * SS, axes[1] * SS]) * 16).astype(int)
    cv2.ellipse(c, (int(q[0]), int(q[1])), (int(q[2]), int(q[3])), deg, 0, 360, 255, -1, cv2.LINE_8, 4)  # 4 frac bits


def background(rng, h, w, yy):
    grass = smooth(fbm(rng, h, w, [64, 32, 16]), -0.5, 0.7)[..., None]
    soil = np.array([0.34, 0.25, 0.17]) * (1 + 0.22 * fbm(rng, h, w, [8, 4, 2])[..., None])
    soil *= 1 - 0.3 * smooth(fbm(rng, h, w, [6, 3]), 0.8, 1.8)[..., None]  # dark clumps
    turf = np.array([0.33, 0.40, 0.15]) * (1 + 0.25 * fbm(rng, h, w, [24, 12, 6])[..., None])
    img = np.ascontiguousarray((soil * (1 - grass) + turf * grass).astype(np.float32))
    for _ in range(h * w // 45):  # grass blades, denser where the turf is
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        if rng.random() > grass[int(y), int(x), 0] + 0.05:
            continue
        a, n = -np.pi / 2 + rng.normal(0, 0.4), rng.uniform(5, 16)
        col = np.array([0.30 + rng.uniform(-.06, .12), 0.42, 0.14 + rng.uniform(-.05, .06)]) * rng.uniform(.55, 1.5)
        cv2.line(img, (int(x), int(y)), (int(x + n * np.cos(a)), int(y + n * np.sin(a))),
                 tuple(float(v) for v in np.clip(col, 0, 1)), 1, cv2.LINE_AA)
    wf = smooth(1 - yy / h, 0.2, 0.95)[..., None]  # depth of field: the top of the frame is farther away
    return cv2.GaussianBlur(img, (0, 0), 0.6) * (1 - wf) + cv2.GaussianBlur(img, (0, 0), 3.5) * wf


def leaf_geom(base, ang, length, width, bend):
    t = np.linspace(0, 1, 64)[:, None]
    u, v = np.array([np.cos(ang), np.sin(ang)]), np.array([-np.sin(ang), np.cos(ang)])
    axis = base + t * length * u + bend * length * t * t * v
    tan = u + 2 * bend * t * v
    nrm = np.stack([-tan[:, 1], tan[:, 0]], 1) / np.linalg.norm(tan, axis=1, keepdims=True)
    hw = 0.5 * width * np.sin(np.pi * t ** 0.75) ** 0.8
    return np.concatenate([axis + hw * nrm, (axis - hw * nrm)[::-1]]), u, v


def leaf_colour(rng, xx, yy, base, u, v, length, width, bend):
    dx, dy = xx - base[0], yy - base[1]
    t = np.clip((dx * u[0] + dy * u[1]) / length, 0, 1)
    s = dx * v[0] + dy * v[1] - bend * length * t * t
    hw = 0.5 * width * np.sin(np.pi * t ** 0.75) ** 0.8 + 1e-3
    g = np.array(rng.choice([[0.13, 0.40, 0.16], [0.19, 0.46, 0.13], [0.10, 0.33, 0.18], [0.22, 0.50, 0.20]]))
    shade = (0.72 + 0.45 * t) * (1 + 0.16 * np.tanh(s / 2.5) * rng.choice([-1, 1]))
    shade *= 1 - 0.25 * np.clip(np.abs(s) / hw, 0, 1) ** 3
    vein = (0.5 + 0.5 * np.cos(2 * np.pi * (t * length - 1.3 * np.abs(s)) / 8.0)) ** 14 * smooth(np.abs(s), 1, 4)
    shade *= 1 + 0.12 * vein + 0.05 * fbm(rng, *xx.shape, [4, 2])
    col, rib = g * shade[..., None], np.exp(-(s / 1.1) ** 2) * smooth(t, .02, .06) * (1 - smooth(t, .8, .97))
    return col + (np.array([0.62, 0.78, 0.42]) - col) * (0.6 * rib)[..., None]


def flower_parts(rng, ctr, r, pal, xx, yy):
    """(coverage, colour) layers of one flower, back to front: two rings of petals, then the centre disk."""
    h, w = xx.shape
    n, phase = int(rng.integers(6, 11)), rng.uniform(0, 2 * np.pi)
    dx, dy = xx - ctr[0], yy - ctr[1]
    rr, light = np.hypot(dx, dy) / r, 1 + 0.12 * (-dx - dy) / (1.41 * r)
    base = np.array(pal[0]) + (np.array(pal[1]) - np.array(pal[0])) * smooth(rr, 0.1, 0.8)[..., None]
    parts = []
    for ring, (scale, dark) in enumerate([(1.0, 0.78), (0.86, 1.0)]):
        for i in range(n):
            th = phase + (2 * np.pi * (i + 0.5 * ring) / n) + rng.normal(0, 0.08)
            a = 0.5 * r * scale * rng.uniform(0.92, 1.06)
            b = a * min(0.62, 2.6 / n + 0.08) * rng.uniform(0.9, 1.1)
            c = ctr + (r * scale - a) * np.array([np.cos(th), np.sin(th)])
            cov = cover(h, w, fill_ellipse, c, (a, b), np.degrees(th))
            q = -(xx - c[0]) * np.sin(th) + (yy - c[1]) * np.cos(th)  # across the petal
            dist = cv2.distanceTransform((cov > 0.5).astype(np.uint8), cv2.DIST_L2, 3)  # darker petal rims
            sh = dark * rng.uniform(0.9, 1.05) * light * (1 - 0.07 * (0.5 + 0.5 * np.cos(q * 2.4)) * rr) \
                * (1 - 0.3 * np.exp(-dist / 1.6))
            parts.append((cov, base * sh[..., None]))
    rc = 0.27 * r
    cov = cover(h, w, fill_ellipse, ctr, (rc, rc), 0)
    d = np.hypot(dx, dy) / rc
    seeds = smooth(fbm(rng, h, w, [1], 0.5), 0.5, 1.5) * smooth(d, 0.15, 0.4)
    hi = np.exp(-(np.hypot(dx + 0.35 * rc, dy + 0.35 * rc) / (0.35 * rc)) ** 2)
    sh = (1.05 - 0.5 * smooth(d, 0.55, 1.0)) * (1 - 0.4 * seeds) + 0.3 * hi
    parts.append((cov, np.array(pal[2]) * sh[..., None]))
    return parts


def chaikin(pts, it=3):
    """Corner-cutting smoothing of a control polygon into a smooth freehand-looking curve."""
    for _ in range(it):
        q = np.repeat(pts, 2, 0)[1:-1].reshape(-1, 2, 2)
        mid = np.concatenate([0.75 * q[:, 0] + 0.25 * q[:, 1], 0.25 * q[:, 0] + 0.75 * q[:, 1]], 1).reshape(-1, 2)
        pts = np.concatenate([pts[:1], mid, pts[-1:]])
    return pts


def scribble(rng, scrib, region, cls, ctrl):
    ctrl = ctrl + rng.normal(0, 1.2, ctrl.shape)  # the hand's wobble
    layer = np.zeros(scrib.shape, np.uint8)
    cv2.polylines(layer, [np.round(chaikin(ctrl)).astype(np.int32)], False, 1, 5, cv2.LINE_8)
    scrib[(layer > 0) & region] = cls


def render(seed, w, h, flowers, n_leaves, scribbled):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = background(rng, h, w, yy)
    weight = np.zeros((h, w, 3), np.float32) + np.array([1, 0, 0], np.float32)  # per-class coverage
    inst = np.zeros((h, w), np.int32)
    objs, ctrs = [], []
    for _ in range(len(flowers)):  # flower centres and radii, not overlapping too much
        r = rng.uniform(0.17, 0.24) * min(w, h) * (1.15 if len(flowers) == 1 else 1.0)
        for _ in range(200):
            c = rng.uniform([0.2 * w, 0.22 * h], [0.8 * w, 0.78 * h])
            if all(np.hypot(*(c - c2)) > 0.9 * (r + r2) for c2, r2 in ctrs):
                break
        ctrs.append((c, r))
    for k in range(n_leaves):  # leaves sprout around the flowers; the last ones reach in from the frame edge
        c, r = ctrs[k % len(ctrs)]
        ang = rng.uniform(0, 2 * np.pi)
        length, width = rng.uniform(1.5, 2.3) * r, rng.uniform(0.5, 0.68) * r
        base = c + 0.3 * r * np.array([np.cos(ang), np.sin(ang)])
        if k >= n_leaves - 2 and k >= len(ctrs) + 1:
            base = rng.uniform([0, 0], [w, h])
            base[np.argmin([base[0], base[1]])] = -5  # on the left or top edge ...
            if rng.random() < 0.5:
                base = np.array([w, h]) - base  # ... or on the right or bottom edge
            ang = np.arctan2(h / 2 - base[1], w / 2 - base[0]) + rng.uniform(-0.6, 0.6)
        bend = rng.uniform(-0.2, 0.2)
        poly, u, v = leaf_geom(base, ang, length, width, bend)
        objs.append((2, [(cover(h, w, fill_poly, poly),
                          leaf_colour(rng, xx, yy, base, u, v, length, width, bend))], (base, u, v, length, width)))
    for (c, r), pal in zip(ctrs, flowers):
        objs.append((1, flower_parts(rng, c, r, pal, xx, yy), (c, r)))
    for j, (cls, parts, _) in enumerate(objs, 1):
        union = 1 - np.prod([1 - p[0] for p in parts], 0)
        sh = cv2.GaussianBlur(np.roll(union, (5, 4), (0, 1)), (0, 0), 4.0)  # soft shadow, light from top-left
        img *= (1 - 0.5 * sh)[..., None]
        for cov, col in parts:
            if cls == 1:  # petals shade the petals below them a little
                img *= (1 - 0.25 * cv2.GaussianBlur(np.roll(cov, (2, 2), (0, 1)), (0, 0), 1.5))[..., None]
            img = img * (1 - cov[..., None]) + col * cov[..., None]
            weight *= (1 - cov)[..., None]
            weight[..., cls] += cov
            inst[cov >= 0.5] = j
    light = 1.08 - 0.16 * (xx / w + yy / h) / 2 - 0.22 * ((xx / w - .5) ** 2 + (yy / h - .5) ** 2)
    img = cv2.GaussianBlur(img * light[..., None], (0, 0), 0.45)
    img += rng.normal(0, 0.012, img.shape) + rng.normal(0, 0.008, (h, w, 1))  # sensor noise
    rgb = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    mask = np.where(weight.max(2) >= 0.85, weight.argmax(2), 255).astype(np.uint8)
    return rgb, mask, (scribbles(rng, objs, inst, mask) if scribbled else None), inst


def scribbles(rng, objs, inst, mask):
    """One or two quick strokes inside every visible leaf and flower, two or three on the background."""
    (h, w), scrib = mask.shape, np.full(mask.shape, 255, np.uint8)
    for j, (cls, _, g) in enumerate(objs, 1):
        region = (inst == j) & (mask == cls)
        if cls == 2:
            base, u, v, length, width = g
            for side in rng.choice([-1, 1], int(rng.integers(1, 3)), replace=False):
                t = np.linspace(rng.uniform(0.15, 0.3), rng.uniform(0.6, 0.8), 4)[:, None]
                s = side * rng.uniform(0.08, 0.18) * width
                scribble(rng, scrib, region, cls, base + t * length * u + s * v)
        else:
            c, r = g
            a = rng.uniform(0, np.pi)
            scribble(rng, scrib, region, cls, c + np.outer([-0.6, -0.2, 0.2, 0.6], [np.cos(a) * r, np.sin(a) * r]))
            if rng.random() < 0.5:
                arc = a + np.linspace(1.0, 2.0, 5)
                scribble(rng, scrib, region, cls, c + 0.6 * r * np.stack([np.cos(arc), np.sin(arc)], 1))
    bgdist = cv2.distanceTransform((mask == 0).astype(np.uint8), cv2.DIST_L2, 3)
    ys, xs = np.nonzero(bgdist > 12)
    for _ in range(int(rng.integers(2, 4))):
        if len(xs) == 0:
            break
        i = rng.integers(len(xs))
        a = np.arctan2(h / 2 - ys[i], w / 2 - xs[i]) + rng.uniform(-1.2, 1.2)  # away from the frame edge
        pts = np.array([xs[i], ys[i]]) + np.outer(np.linspace(0, rng.uniform(30, 60), 4), [np.cos(a), np.sin(a)])
        pts += np.outer(np.sin(np.linspace(0, np.pi, 4)), [-np.sin(a), np.cos(a)]) * rng.uniform(-8, 8)
        scribble(rng, scrib, mask == 0, 0, pts)
        far = np.hypot(xs - xs[i], ys - ys[i]) > 60  # spread the background strokes out
        xs, ys = xs[far], ys[far]
    return scrib


def main():
    for sub in ("images", "masks", "scribbles", "boxes"):
        (OUT / sub).mkdir(parents=True, exist_ok=True)
    (OUT / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    for seed, (name, (w, h), flowers, n_leaves, scribbled, _) in enumerate(SCENES, 11):
        rgb, mask, scrib, inst = render(seed, w, h, flowers, n_leaves, scribbled)
        Image.fromarray(rgb, "RGB").save(OUT / "images" / f"{name}.jpg", quality=92)
        Image.fromarray(mask, "L").save(OUT / "masks" / f"{name}.png", optimize=True)
        if scrib is not None:
            Image.fromarray(scrib, "L").save(OUT / "scribbles" / f"{name}.png", optimize=True)
        if name in BOXED:
            boxes = [{"class": 1, "box": list(b)} for j in np.unique(inst[mask == 1])
                     for _, b in boxes_from_mask(((inst == j) & (mask == 1)).astype(np.uint8), min_area=150)]
            (OUT / "boxes" / f"{name}.json").write_text(json.dumps(boxes) + "\n")
    for split in ("train", "test"):
        (OUT / f"{split}.txt").write_text("".join(s[0] + "\n" for s in SCENES if s[5] == split))


if __name__ == "__main__":
    main()
