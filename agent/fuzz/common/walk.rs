//! Helpers shared by the fuzz targets: walk every accessor of a validated view so that the
//! fuzzer reaches the code behind each one. Results go through `black_box` so nothing is
//! optimised away.

use std::hint::black_box;

use voqa_agent::decode::rtcp::{Compound, RtcpPacket, VoipMetrics};
use voqa_agent::decode::rtp::RtpPacket;

/// Reads every field of a checked RTP packet.
#[allow(dead_code)]
pub fn walk_rtp(packet: &RtpPacket<'_>) {
    black_box((
        packet.version(),
        packet.padding(),
        packet.extension(),
        packet.csrc_count(),
        packet.marker(),
        packet.payload_type(),
        packet.sequence_number(),
        packet.timestamp(),
        packet.ssrc(),
    ));
    for index in 0..=usize::from(packet.csrc_count()) {
        black_box(packet.csrc(index));
    }
    black_box(packet.extension_header());
    black_box((packet.header_len(), packet.padding_len(), packet.payload()));
}

/// Iterates every packet, report block, BYE source and XR block of a validated compound.
pub fn walk_compound(compound: &Compound<'_>) {
    black_box(compound.as_bytes());
    for packet in compound.packets() {
        match packet {
            RtcpPacket::SenderReport(sr) => {
                black_box((
                    sr.ssrc(),
                    sr.ntp_timestamp(),
                    sr.ntp_middle32(),
                    sr.rtp_timestamp(),
                    sr.packet_count(),
                    sr.octet_count(),
                    sr.profile_extension(),
                ));
                let blocks = sr.report_blocks();
                black_box(blocks.len());
                for block in blocks {
                    black_box(block);
                }
            }
            RtcpPacket::ReceiverReport(rr) => {
                black_box((rr.ssrc(), rr.profile_extension()));
                let blocks = rr.report_blocks();
                black_box(blocks.len());
                for block in blocks {
                    black_box(block);
                }
            }
            RtcpPacket::SourceDescription(body) | RtcpPacket::App(body) => {
                black_box(body);
            }
            RtcpPacket::Goodbye(bye) => {
                let sources = bye.ssrcs();
                black_box(sources.len());
                for ssrc in sources {
                    black_box(ssrc);
                }
                black_box(bye.reason());
            }
            RtcpPacket::ExtendedReport(xr) => {
                black_box(xr.ssrc());
                for block in xr.blocks() {
                    black_box(block);
                    if let Ok(metrics) = VoipMetrics::new_checked(&block) {
                        walk_voip_metrics(&metrics);
                    }
                }
            }
            RtcpPacket::Other { packet_type, body } => {
                black_box((packet_type, body));
            }
        }
    }
}

fn walk_voip_metrics(metrics: &VoipMetrics<'_>) {
    black_box((
        metrics.ssrc(),
        metrics.loss_rate(),
        metrics.discard_rate(),
        metrics.burst_density(),
        metrics.gap_density(),
        metrics.burst_duration_ms(),
        metrics.gap_duration_ms(),
        metrics.round_trip_delay_ms(),
        metrics.end_system_delay_ms(),
        metrics.signal_level(),
        metrics.noise_level(),
    ));
    black_box((
        metrics.rerl(),
        metrics.gmin(),
        metrics.r_factor(),
        metrics.ext_r_factor(),
        metrics.mos_lq(),
        metrics.mos_cq(),
        metrics.rx_config(),
        metrics.jb_nominal(),
        metrics.jb_maximum(),
        metrics.jb_abs_max(),
    ));
}
