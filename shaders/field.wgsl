// field.wgsl — grid fields for drawing and metrics at noise level S.t. One tile of TILE_N cells
// per workgroup (the cooperative network, mlp.wgsl) of a
// grid_nx × grid_ny grid over [grid_lo, grid_hi] (cell centres); aux[5c ..] = learned score
// (xy), exact score (xy), exact log p_t. With score_kind = exact the learned slot holds the
// exact score too; with a velocity network (SCORE_FLOW) it holds the learned velocity.

@compute @workgroup_size(WORKGROUP_SIZE)
fn field(ids: TileIds) {
    let slot = tile_slot(ids, tile_size(), P.grid_nx * P.grid_ny);
    let c = slot.i;
    let ix = c % P.grid_nx;
    let iy = c / P.grid_nx;
    let f = vec2<f32>((f32(ix) + 0.5) / f32(P.grid_nx), (f32(iy) + 0.5) / f32(P.grid_ny));
    let x = P.grid_lo + (P.grid_hi - P.grid_lo) * f;
    let exact = exact_score_logp(x, S.t);
    var learned = exact.xy;
    if (P.score_kind == SCORE_NET) {
        learned = score_from_output(x, tile_net_g(ids.lid, x, S.t), precond(S.t));
    } else if (P.score_kind == SCORE_FLOW) {
        // A velocity network: the learned slot holds v_θ(x, t) at flow time S.t.
        learned = flow_velocity(x, tile_net_g(ids.lid, x, S.t), S.t);
    }
    if (!slot.live) {
        return;
    }
    aux[5u * c] = learned.x;
    aux[5u * c + 1u] = learned.y;
    aux[5u * c + 2u] = exact.x;
    aux[5u * c + 3u] = exact.y;
    aux[5u * c + 4u] = exact.z;
}
