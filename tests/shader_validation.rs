//! Tier 2 (ARCHITECTURE.md §6), no GPU needed: every WGSL module parses and validates with naga, and
//! every GPU-visible struct has the same field offsets and size in WGSL and in Rust.

use std::mem::{offset_of, size_of};

use scorelab::gpu::WORKGROUP_SIZE;

use scorelab::gpu::layout::{ComponentGpu, MixtureGpu, Params, StepParams};
use scorelab::gpu::shaders;

fn parse(src: &str, name: &str) -> naga::Module {
    naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)))
}

/// Parse and validate a standalone module (one that is not composed with the prelude).
fn parse_valid(src: &str, name: &str) -> naga::Module {
    let module = parse(src, name);
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
    module
}

#[test]
fn every_shader_module_validates() {
    for stage in shaders::STAGES {
        let (file, entries) = (stage.file, stage.entries);
        let src = shaders::compose(stage.source);
        let module = parse(&src, file);
        let mut v = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        );
        v.validate(&module)
            .unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(&src)));
        for (entry, _) in entries {
            let ep = module
                .entry_points
                .iter()
                .find(|ep| ep.name == entry.name());
            let ep = ep.unwrap_or_else(|| panic!("{file} lacks entry point {entry}"));
            // One thread per item in WORKGROUP_SIZE groups, or a single-thread finisher, or a
            // 256-wide reduction.
            let ok = [[WORKGROUP_SIZE, 1, 1], [1, 1, 1], [256, 1, 1]].contains(&ep.workgroup_size);
            assert!(
                ok,
                "{file}: {entry} has workgroup size {:?}",
                ep.workgroup_size
            );
        }
    }
    // Every file in shaders/ is used by some stage (or is part of the prelude).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    for f in std::fs::read_dir(dir).unwrap() {
        let name = f.unwrap().file_name().into_string().unwrap();
        let used = [
            "common.wgsl",
            "mixture.wgsl",
            "mlp.wgsl",
            "particles_draw.wgsl",
            "matmul.wgsl",
        ]
        .contains(&name.as_str())
            || shaders::STAGES.iter().any(|s| s.file == name);
        assert!(used, "shaders/{name} is not compiled by any stage");
    }
}

/// The render pipeline that draws particles from the sampler's buffer (not a compute stage):
/// it validates, has both entry points, and its uniform matches the Rust struct's size.
#[test]
fn particle_draw_shader_validates() {
    let src = scorelab::app::particles::SHADER;
    let module = parse_valid(src, "particles_draw.wgsl");
    for entry in ["vs_main", "fs_main"] {
        assert!(module.entry_points.iter().any(|ep| ep.name == entry));
    }
    let (_, size) = wgsl_struct(&module, "DrawUniform");
    assert_eq!(size as usize, scorelab::app::particles::DRAW_UNIFORM_SIZE);
}

fn wgsl_struct(module: &naga::Module, name: &str) -> (Vec<(String, u32)>, u32) {
    for (_, ty) in module.types.iter() {
        if ty.name.as_deref() == Some(name) {
            if let naga::TypeInner::Struct { members, span } = &ty.inner {
                return (
                    members
                        .iter()
                        .map(|m| (m.name.clone().unwrap_or_default(), m.offset))
                        .collect(),
                    *span,
                );
            }
        }
    }
    panic!("struct {name} not found in common.wgsl");
}

macro_rules! assert_layout {
    ($module:expr, $wgsl:literal, $rust:ty, [$($field:ident),* $(,)?]) => {{
        let (members, span) = wgsl_struct($module, $wgsl);
        let rust: Vec<(String, u32)> = vec![$((stringify!($field).to_string(), offset_of!($rust, $field) as u32)),*];
        assert_eq!(members.len(), rust.len(), "{}: member count", $wgsl);
        for ((wn, wo), (rn, ro)) in members.iter().zip(&rust) {
            assert_eq!(wo, ro, "{}.{} (Rust {}) offset", $wgsl, wn, rn);
        }
        assert_eq!(span as usize, size_of::<$rust>(), "{} size", $wgsl);
    }};
}

#[test]
fn struct_layouts_match_rust() {
    let src = shaders::compose("");
    let m = parse(&src, "prelude");
    assert_layout!(
        &m,
        "Params",
        Params,
        [
            n_in,
            width,
            depth,
            n_time_freqs,
            n_x_freqs,
            n_params,
            batch,
            seed,
            sde_kind,
            score_kind,
            n_particles,
            scratch_stride,
            beta_min,
            beta_max,
            data_std,
            t_eps,
            lr,
            beta1,
            beta2,
            adam_eps,
            ema_decay,
            snr,
            grid_nx,
            grid_ny,
            guidance_component,
            guidance_scale,
            grid_lo,
            grid_hi,
            grad_chunk,
            grad_chunks,
        ]
    );
    assert_layout!(
        &m,
        "Component",
        ComponentGpu,
        [mean, weight, log_weight, cov, chol]
    );
    // Mixture: WGSL pads with two scalars where Rust has one `[u32; 2]`; compare the data members
    // (the components and the SDE's data frame).
    let (members, span) = wgsl_struct(&m, "Mixture");
    let off = |name: &str| {
        members
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| *o)
            .unwrap()
    };
    assert_eq!(off("n") as usize, offset_of!(MixtureGpu, n));
    assert_eq!(off("scale") as usize, offset_of!(MixtureGpu, scale));
    assert_eq!(off("center") as usize, offset_of!(MixtureGpu, center));
    assert_eq!(off("sigma_min") as usize, offset_of!(MixtureGpu, sigma_min));
    assert_eq!(off("sigma_max") as usize, offset_of!(MixtureGpu, sigma_max));
    assert_eq!(off("comps") as usize, offset_of!(MixtureGpu, comps));
    assert_eq!(span as usize, size_of::<MixtureGpu>());
    assert_layout!(
        &m,
        "StepParams",
        StepParams,
        [step, method, seed, _pad, t, t_next, alpha, dt, c]
    );
}

/// The benchmarks' reference SGEMM (standalone, not part of the shared prelude) validates.
#[test]
fn matmul_shader_validates() {
    let module = parse_valid(scorelab::gpu::matmul::SHADER, "matmul.wgsl");
    assert!(module.entry_points.iter().any(|ep| ep.name == "matmul"));
}

/// The prelude's `WORKGROUP_SIZE` is the Rust one (dispatch counts use it), and every stage
/// entry point names a CPU twin that exists in `sim` (the table the parity tests follow).
#[test]
fn stage_table_matches_the_code() {
    let want = format!("const WORKGROUP_SIZE: u32 = {WORKGROUP_SIZE}u;");
    assert!(shaders::COMMON.contains(&want), "common.wgsl lacks {want}");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for stage in shaders::STAGES {
        for (entry, twin) in stage.entries {
            let parts: Vec<&str> = twin.path.split("::").collect();
            let func = parts[parts.len() - 1];
            // The module is the path up to the first capitalised segment (a type) or the function.
            let module: Vec<&str> = parts[..parts.len() - 1]
                .iter()
                .take_while(|p| !p.starts_with(char::is_uppercase))
                .copied()
                .collect();
            let base = root.join(module.join("/"));
            // A file module, or every file of a directory module (re-exported items).
            let text = std::fs::read_to_string(base.with_extension("rs")).unwrap_or_else(|_| {
                std::fs::read_dir(&base)
                    .unwrap_or_else(|e| {
                        panic!("{entry}: the twin {} has no module ({e})", twin.path)
                    })
                    .filter_map(|f| std::fs::read_to_string(f.ok()?.path()).ok())
                    .collect()
            });
            assert!(
                text.contains(&format!("fn {func}(")) || text.contains(&format!("fn {func}<")),
                "{entry}: the twin {} has no `fn {func}`",
                twin.path
            );
        }
    }
}

/// 4-byte words in a value of type `ty` (runtime-sized arrays count 0: they live in storage).
fn words(module: &naga::Module, ty: naga::Handle<naga::Type>) -> u32 {
    use naga::TypeInner as T;
    match &module.types[ty].inner {
        T::Scalar(_) | T::Atomic(_) => 1,
        T::Vector { size, .. } => *size as u32,
        T::Matrix { columns, rows, .. } => *columns as u32 * *rows as u32,
        T::Array {
            base,
            size: naga::ArraySize::Constant(n),
            ..
        } => n.get() * words(module, *base),
        T::Struct { members, .. } => members.iter().map(|m| words(module, m.ty)).sum(),
        _ => 0,
    }
}

/// (file, full source) of every module: the composed stages, the particle draw, the matmul.
fn every_module() -> Vec<(String, String)> {
    let mut modules: Vec<(String, String)> = shaders::STAGES
        .iter()
        .map(|s| (s.file.to_string(), shaders::compose(s.source)))
        .collect();
    modules.push((
        "particles_draw.wgsl".into(),
        scorelab::app::particles::SHADER.into(),
    ));
    modules.push(("matmul.wgsl".into(), scorelab::gpu::matmul::SHADER.into()));
    modules
}

/// Register-sized per-thread state and WebGPU's workgroup memory (issue 17): no function- or
/// private-space variable above 64 floats (a real GPU spills it to slow local memory and
/// occupancy collapses), and at most 16 KiB of workgroup memory per module (WebGPU's default
/// `maxComputeWorkgroupStorageSize`). Every module: the stages, the particle draw, the matmul.
#[test]
fn per_thread_arrays_fit_registers_and_workgroup_memory_fits_webgpu() {
    let modules = every_module();
    for (file, src) in &modules {
        let module = parse(src, file);
        let mut workgroup = 0;
        for (_, g) in module.global_variables.iter() {
            let n = words(&module, g.ty);
            let name = g.name.as_deref().unwrap_or("?");
            match g.space {
                naga::AddressSpace::WorkGroup => workgroup += 4 * n,
                naga::AddressSpace::Private => assert!(
                    n <= 64,
                    "{file}: var<private> {name} holds {n} floats (at most 64)"
                ),
                _ => {}
            }
        }
        assert!(
            workgroup <= 16 * 1024,
            "{file}: {workgroup} bytes of workgroup memory (WebGPU's default limit is 16 KiB)"
        );
        let functions = module
            .functions
            .iter()
            .map(|(_, f)| f)
            .chain(module.entry_points.iter().map(|ep| &ep.function));
        for f in functions {
            for (_, v) in f.local_variables.iter() {
                let n = words(&module, v.ty);
                assert!(
                    n <= 64,
                    "{file}: {} has a local {} of {n} floats (at most 64)",
                    f.name.as_deref().unwrap_or("?"),
                    v.name.as_deref().unwrap_or("?")
                );
            }
        }
    }
}

/// Every module, each entry point, through naga's four back ends — what wgpu hands Vulkan
/// (SPIR-V), Metal (MSL), D3D12 (HLSL) and GLES (GLSL ES 3.10) — so that a translation failure
/// for a backend this machine does not have shows here (issue 32). The SPIR-V is parsed back
/// and validated (a structural check; lavapipe compiles it for real in the GPU tier).
#[test]
fn every_shader_translates_to_spirv_msl_hlsl_and_glsl() {
    use naga::back::{glsl, hlsl, msl, spv};
    let modules = every_module();
    let mut translated = 0;
    let mut not_revalidated = Vec::new();
    for (file, src) in &modules {
        let module = parse(src, file);
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(src)));
        for ep in &module.entry_points {
            let what = format!("{file} {}", ep.name);
            let words = spv::write_vec(
                &module,
                &info,
                &spv::Options::default(),
                Some(&spv::PipelineOptions {
                    shader_stage: ep.stage,
                    entry_point: ep.name.clone(),
                }),
            )
            .unwrap_or_else(|e| panic!("{what} → SPIR-V: {e}"));
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            let back = naga::front::spv::parse_u8_slice(&bytes, &Default::default())
                .unwrap_or_else(|e| panic!("{what}: the SPIR-V does not parse back: {e:?}"));
            let valid = naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::all(),
            )
            .validate(&back);
            if let Err(e) = valid {
                // naga's SPIR-V reader lifts an atomic's storage as a plain integer, so a
                // module with atomics does not re-validate (its SPIR-V runs on lavapipe in the
                // GPU tier); any other failure is a real one.
                let atomics = src.contains("atomic<");
                assert!(atomics, "{what}: the SPIR-V does not validate: {e:?}");
                not_revalidated.push(what.clone());
            }
            let (metal, _) = msl::write_string(
                &module,
                &info,
                &msl::Options {
                    lang_version: (2, 4),
                    ..Default::default()
                },
                &msl::PipelineOptions {
                    entry_point: Some((ep.stage, ep.name.clone())),
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("{what} → MSL: {e}"));
            assert!(
                metal.contains("kernel") || metal.contains("vertex") || metal.contains("fragment"),
                "{what}: MSL without an entry point"
            );
            let hl_opts = hlsl::Options {
                shader_model: hlsl::ShaderModel::V6_0,
                ..Default::default()
            };
            let hl_pipe = hlsl::PipelineOptions {
                entry_point: Some((ep.stage, ep.name.clone())),
            };
            let mut hl = String::new();
            hlsl::Writer::new(&mut hl, &hl_opts, &hl_pipe)
                .write(&module, &info, None)
                .unwrap_or_else(|e| panic!("{what} → HLSL: {e}"));
            assert!(hl.contains(&ep.name), "{what}: HLSL lacks the entry point");
            let gl_opts = glsl::Options::default();
            let gl_pipe = glsl::PipelineOptions {
                shader_stage: ep.stage,
                entry_point: ep.name.clone(),
                multiview: None,
            };
            let mut gl = String::new();
            glsl::Writer::new(
                &mut gl,
                &module,
                &info,
                &gl_opts,
                &gl_pipe,
                naga::proc::BoundsCheckPolicies::default(),
            )
            .and_then(|mut w| w.write())
            .unwrap_or_else(|e| panic!("{what} → GLSL ES 3.10: {e}"));
            assert!(
                gl.starts_with("#version 310 es"),
                "{what}: {}",
                &gl[..40.min(gl.len())]
            );
            translated += 1;
        }
    }
    // Every compute entry point of the table plus the draw and matmul shaders' entries.
    assert!(
        translated >= shaders::Entry::ALL.len() + 3,
        "{translated} entry points"
    );
    eprintln!("{translated} entry points translated; SPIR-V not re-validated (atomics): {not_revalidated:?}");
    assert!(not_revalidated.len() <= 2, "{not_revalidated:?}");
}
