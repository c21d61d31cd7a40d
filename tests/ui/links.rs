//! Links the app is opened with (moved from tests/browser/lessons.mjs; the page hands its
//! address bar's hash to the same `AppOptions::hash`): a link round-trips (open it, change
//! nothing, the app's link is the same string and its state the same), and hostile hashes
//! each show a message and leave a working app with the default scene.

use super::*;
use scorelab::sim::mixture::{ComponentSpec, MixtureSpec};
use scorelab::sim::samplers::SamplerKind;
use scorelab::state::link::{to_hash, EmbedFlags};
use scorelab::state::{SplitMode, State};

fn b64(text: &[u8]) -> String {
    scorelab::state::base64::base64url_encode(text)
}

#[test]
fn a_link_round_trips_through_the_app() {
    let mut st = State::default();
    st.scene.mixture = MixtureSpec {
        components: vec![
            ComponentSpec {
                weight: 1.0,
                mean: [-3.0, 1.0],
                cov: [[1.0, 0.3], [0.3, 0.5]],
            },
            ComponentSpec {
                weight: 2.0,
                mean: [2.0, -1.0],
                cov: [[0.7, 0.0], [0.0, 0.7]],
            },
        ],
    };
    st.scene.t = 0.25;
    st.scene.seed = 5;
    let m = scorelab::sim::mixture::GaussianMixture::from_spec(&st.scene.mixture).unwrap();
    st.samplers[0] = st.samplers[0].with_kind(SamplerKind::Pc, &m);
    st.split = SplitMode::Density;
    st.ode_paths = true;
    st.probe = Some([1.5, -2.0]);
    st.training = false;
    let hash = to_hash(&st, &EmbedFlags::default());
    let mut h = app_with(Some(&hash));
    frames(&mut h, 5);
    let s = snap(&h);
    assert!(s["link_error"].is_null(), "{}", s["link_error"]);
    let mut want = st.clone();
    want.view = h.state().state().view;
    assert_eq!(h.state().state(), &want, "the link restores the state");
    // The view box the canvas fitted is in the link the app gives back; with it, the same.
    let again = s["link"].as_str().unwrap_or("").to_string();
    let mut h2 = app_with(Some(&again[again.find('#').unwrap_or(0)..]));
    frames(&mut h2, 5);
    assert_eq!(
        snap(&h2)["link"],
        again,
        "a loaded link, unchanged, copies back identically"
    );
    assert_eq!(s["split"], "density");
    assert_eq!(s["sampling"]["kind"], "pc");
    assert_eq!(s["scene"]["seed"], 5);
}

#[test]
fn hostile_hashes_leave_a_working_app_with_a_message() {
    let many = format!(
        "{{\"scene\":{{\"mixture\":{{\"components\":[{}]}}}}}}",
        &vec!["{}"; 1_000_000].join(",")[..200_000]
    );
    let hostile = [
        (
            "huge numbers",
            format!(
                "#s={}",
                b64(br#"{"scene":{"t":1e308},"settings":{"width":1e300,"depth":3,"batch":128,"lr":0.003}}"#)
            ),
        ),
        ("NaN", format!("#s={}", b64(br#"{"scene":{"t":NaN}}"#))),
        ("10^6 components", format!("#s={}", b64(many.as_bytes()))),
        ("invalid UTF-8", format!("#s={}", b64(&[0xff, 0xfe, 0xfd, 0x80]))),
        ("percent-encoded invalid UTF-8", "#s=%FF%FE".into()),
        ("100 kB string", format!("#s={}", "A".repeat(100_000))),
        ("unknown key", "#evil=%3Cscript%3E".into()),
        (
            "negative particles",
            format!("#s={}", b64(br#"{"samplers":[{"n":-5}]}"#)),
        ),
    ];
    for (what, hash) in hostile {
        let mut h = app_with(Some(&hash));
        let f0 = snap(&h)["frame"].as_u64().unwrap_or(0);
        frames(&mut h, 3);
        let s = snap(&h);
        let msg = s["link_error"].as_str().unwrap_or("");
        assert!(msg.len() > 10, "{what}: a message ({msg:?})");
        assert!(shows(&h, msg), "{what}: the message is on screen");
        assert!(
            s["frame"].as_u64().unwrap_or(0) > f0,
            "{what}: frames keep coming"
        );
        assert_eq!(
            h.state().state().scene,
            State::default().scene,
            "{what}: the default scene"
        );
    }
}
