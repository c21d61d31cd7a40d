// matmul.wgsl — the reference kernel of the benchmarks (not used by the app): a classic
// shared-memory tiled SGEMM, C (M×N) = A (M×K) · B (K×N), all row-major f32.
// A 16×16 workgroup computes a 64×64 tile of C, 4×4 outputs per thread, stepping through K
// in slices of 16 staged in workgroup memory. The fused MLP kernels are reported as a
// fraction of the FLOP/s this reaches on the same adapter (docs/BENCHMARKS.md).

struct Dims {
    m: u32,
    n: u32,
    k: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const TILE: u32 = 64u;
const KT: u32 = 16u;

var<workgroup> ta: array<array<f32, 64>, 16>; // [k][row]
var<workgroup> tb: array<array<f32, 64>, 16>; // [k][col]

@compute @workgroup_size(16, 16)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let tid = lid.y * 16u + lid.x;
    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            acc[i][j] = 0.0;
        }
    }
    for (var k0 = 0u; k0 < dims.k; k0 += KT) {
        // 256 threads load 64×16 of A and 16×64 of B: 4 elements each.
        for (var e = 0u; e < 4u; e++) {
            let idx = tid + e * 256u;
            // A: rows row0..row0+64, cols k0..k0+16 (idx = r * 16 + kk).
            let ar = idx / KT;
            let ak = idx % KT;
            var va = 0.0;
            if (row0 + ar < dims.m && k0 + ak < dims.k) {
                va = a[(row0 + ar) * dims.k + k0 + ak];
            }
            ta[ak][ar] = va;
            // B: rows k0..k0+16, cols col0..col0+64 (idx = kk * 64 + cc).
            let bk = idx / TILE;
            let bc = idx % TILE;
            var vb = 0.0;
            if (k0 + bk < dims.k && col0 + bc < dims.n) {
                vb = b[(k0 + bk) * dims.n + col0 + bc];
            }
            tb[bk][bc] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < KT; kk++) {
            var ra: array<f32, 4>;
            var rb: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                ra[i] = ta[kk][lid.y + 16u * i];
                rb[i] = tb[kk][lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] = fma(ra[i], rb[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let cc = col0 + lid.x + 16u * j;
            if (r < dims.m && cc < dims.n) {
                c[r * dims.n + cc] = acc[i][j];
            }
        }
    }
}
