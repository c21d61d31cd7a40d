// Render pipeline (not compute): particles drawn straight from the sampler's buffer, one
// instanced quad (two triangles) per particle, a soft disc in the fragment stage. Trails are
// earlier snapshots of the same buffer, drawn oldest first with lower alpha and radius; each
// draw reads its own entry of `u` through a dynamic offset.

struct DrawUniform {
    // data-space point shown at the centre of the viewport
    center: vec2<f32>,
    // NDC units per data unit (x, y)
    scale: vec2<f32>,
    // NDC units per pixel (x, y)
    px: vec2<f32>,
    radius_px: f32,
    alpha: f32,
    color: vec4<f32>,
    // 1: draw x_mean (the noise-free prediction) instead of x
    use_mean: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
};

@group(0) @binding(0) var<uniform> u: DrawUniform;

struct VsOut {
    @builtin(position) pos: vec4<f32>,
    @location(0) local: vec2<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) vi: u32, @location(0) particle: vec4<f32>) -> VsOut {
    var corners = array<vec2<f32>, 6>(
        vec2<f32>(-1.0, -1.0), vec2<f32>(1.0, -1.0), vec2<f32>(1.0, 1.0),
        vec2<f32>(-1.0, -1.0), vec2<f32>(1.0, 1.0), vec2<f32>(-1.0, 1.0),
    );
    let c = corners[vi % 6u];
    var p = particle.xy;
    if (u.use_mean == 1u) {
        p = particle.zw;
    }
    var out: VsOut;
    out.local = c;
    // Non-finite particles (a diverged model) are moved outside the clip volume.
    let finite = abs(p.x) < 1e30 && abs(p.y) < 1e30;
    if (!finite) {
        out.pos = vec4<f32>(4.0, 4.0, 0.0, 1.0);
        return out;
    }
    let ndc = (p - u.center) * u.scale + c * u.radius_px * u.px;
    out.pos = vec4<f32>(ndc, 0.0, 1.0);
    return out;
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    let d = length(in.local);
    if (d > 1.0) {
        discard;
    }
    let a = u.alpha * (1.0 - smoothstep(0.55, 1.0, d));
    // egui's render target blends premultiplied alpha.
    return vec4<f32>(u.color.rgb * a, a);
}
