"""The facts an H.264 sequence parameter set states (ITU-T H.264 7.3.2.1.1 and Annex E.1.1).

Read from an MP4's ``avcC`` box (:mod:`batch.media.mp4_index`): the pixel format, the colour
description and chroma siting a decoder (and so ffprobe) reports come from here. Anything this
reader does not take (a cut-short SPS, more than one, a profile it does not know) raises
:class:`SpsUnreadable`; the caller then asks ffprobe.
"""

from __future__ import annotations

from dataclasses import dataclass

# profiles whose SPS carries chroma_format_idc, bit depths and scaling matrices (7.3.2.1.1)
_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


class SpsUnreadable(ValueError):
    """An SPS (or avcC) this reader cannot take."""


@dataclass(frozen=True)
class Sps:
    profile: int
    sps_id: int
    chroma_format: int  # 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4
    bit_depth_luma: int
    bit_depth_chroma: int
    frame_mbs_only: bool  # every picture a frame: progressive coding
    width: int  # after the cropping window
    height: int
    video_signal_type: bool  # E.1.1 video_signal_type_present_flag
    full_range: bool
    colour_description: bool
    primaries: int
    transfer: int
    matrix: int
    chroma_loc_top: int | None  # chroma_sample_loc_type_top_field, when stated
    square_pixels: bool = True  # the VUI states no pixel aspect, an unspecified one, or 1:1


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def bit(self) -> int:
        byte = self.pos >> 3
        if byte >= len(self.data):
            raise SpsUnreadable("the SPS is cut short")
        value = (self.data[byte] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return value

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise SpsUnreadable("an Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def _unescape(nal: bytes) -> bytes:
    """The RBSP: emulation prevention bytes (00 00 03) removed."""
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def sps_from_avcc(avcc: bytes) -> Sps:
    """The one SPS of an ``avcC`` (AVCDecoderConfigurationRecord) payload."""
    if len(avcc) < 8 or avcc[0] != 1 or avcc[4] & 0xFC != 0xFC or avcc[5] & 0xE0 != 0xE0:
        raise SpsUnreadable("not an avcC record of version 1")
    count = avcc[5] & 0x1F
    if count != 1:
        raise SpsUnreadable(f"{count} SPS in avcC")
    length = int.from_bytes(avcc[6:8], "big")
    nal = avcc[8 : 8 + length]
    if len(nal) != length or len(nal) < 4 or nal[0] & 0x1F != 7 or nal[1:4] != avcc[1:4]:
        raise SpsUnreadable("the avcC's SPS is cut short, not an SPS, or not the profile avcC names")
    pos = 8 + length
    if pos >= len(avcc) or not avcc[pos]:
        raise SpsUnreadable("avcC holds no PPS")
    sps = parse_sps(_unescape(nal[1:]))
    pps_count, pos = avcc[pos], pos + 1
    for _ in range(pps_count):
        pps = int.from_bytes(avcc[pos : pos + 2], "big")
        if pps < 2 or pos + 2 + pps > len(avcc) or avcc[pos + 2] & 0x1F != 8:
            raise SpsUnreadable("a PPS in avcC is cut short or not a PPS")
        check_pps(_unescape(avcc[pos + 3 : pos + 2 + pps]), sps)
        pos += 2 + pps
    return sps


def check_pps(rbsp: bytes, sps: Sps) -> None:
    """A picture parameter set (7.3.2.2) a decoder takes: values in range, ending at its trailing bits."""
    r = _Bits(rbsp)
    if r.ue() > 255 or r.ue() != sps.sps_id:
        raise SpsUnreadable("a PPS's ids are out of range or name another SPS")
    r.bits(2)  # entropy_coding_mode_flag, bottom_field_pic_order_in_frame_present_flag
    if r.ue() != 0:
        raise SpsUnreadable("a PPS with slice groups")
    if r.ue() > 31 or r.ue() > 31 or (r.bit(), r.bits(2))[1] > 2:
        raise SpsUnreadable("a PPS's reference counts or weighted prediction out of range")
    if not -26 <= r.se() <= 25 or not -26 <= r.se() <= 25 or not -12 <= r.se() <= 12:
        raise SpsUnreadable("a PPS's quantiser offsets out of range")
    r.bits(3)  # deblocking_filter_control_present, constrained_intra_pred, redundant_pic_cnt_present
    stop = _stop_bit(rbsp)
    if r.pos < stop:  # more_rbsp_data: the High profile's fields
        r.bit()  # transform_8x8_mode_flag
        if r.bit():  # pic_scaling_matrix_present_flag
            raise SpsUnreadable("a PPS with scaling matrices")
        if not -12 <= r.se() <= 12:
            raise SpsUnreadable("a PPS's second chroma offset out of range")
    if r.pos != stop:
        raise SpsUnreadable("the PPS does not end where its syntax ends")


def _stop_bit(rbsp: bytes) -> int:
    """The bit position of rbsp_stop_one_bit: the last bit set."""
    end = len(rbsp.rstrip(b"\x00"))
    if end == 0:
        raise SpsUnreadable("an empty parameter set")
    last = rbsp[end - 1]
    return end * 8 - 1 - ((last & -last).bit_length() - 1)


def _skip_scaling_list(r: _Bits, size: int) -> None:
    last = nxt = 8
    for _ in range(size):
        if nxt:
            nxt = (last + r.se() + 256) % 256
        last = nxt or last


def _hrd(r: _Bits) -> None:
    count = r.ue() + 1
    if count > 32:
        raise SpsUnreadable(f"cpb_cnt {count}")
    r.bits(8)  # bit_rate_scale, cpb_size_scale
    for _ in range(count):
        r.ue()
        r.ue()
        r.bit()
    r.bits(20)  # four 5-bit lengths


def _rest_of_vui(r: _Bits) -> None:
    """Timing, HRD and bitstream restriction (E.1.1): read to reach the SPS's trailing bits."""
    if r.bit():  # timing_info_present_flag
        r.bits(32)
        r.bits(32)
        r.bit()
    nal, vcl = r.bit(), 0
    if nal:
        _hrd(r)
    vcl = r.bit()
    if vcl:
        _hrd(r)
    if nal or vcl:
        r.bit()  # low_delay_hrd_flag
    r.bit()  # pic_struct_present_flag
    if r.bit():  # bitstream_restriction_flag
        r.bit()
        for _ in range(4):
            r.ue()
        if r.ue() > 16 or r.ue() > 16:  # max_num_reorder_frames, max_dec_frame_buffering
            raise SpsUnreadable("a reorder or frame buffer depth above 16")


def _trailing_bits(r: _Bits) -> None:
    """rbsp_trailing_bits: a one, then zeros to the end; anything else is a damaged SPS."""
    if r.bit() != 1 or any(r.bit() for _ in range(len(r.data) * 8 - r.pos)):
        raise SpsUnreadable("the SPS does not end where its syntax ends")


def parse_sps(rbsp: bytes) -> Sps:
    """An SPS's RBSP (after the NAL header byte, emulation prevention removed)."""
    r = _Bits(rbsp)
    profile = r.bits(8)
    r.bits(16)  # constraint flags, reserved bits, level_idc
    sps_id = r.ue()
    if sps_id > 31:
        raise SpsUnreadable(f"seq_parameter_set_id {sps_id}")
    chroma_format, depth_luma, depth_chroma = 1, 8, 8
    if profile in _HIGH_PROFILES:
        chroma_format = r.ue()
        if chroma_format > 3:
            raise SpsUnreadable(f"chroma_format_idc {chroma_format}")
        if chroma_format == 3 and r.bit():  # separate_colour_plane_flag: ffmpeg decodes no such stream
            raise SpsUnreadable("separate colour planes")
        depth_luma, depth_chroma = r.ue() + 8, r.ue() + 8
        if depth_luma > 14 or depth_chroma > 14:
            raise SpsUnreadable("bit depth above 14")
        r.bit()  # qpprime_y_zero_transform_bypass_flag
        if r.bit():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format != 3 else 12):
                if r.bit():
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    if r.ue() > 12:  # log2_max_frame_num_minus4
        raise SpsUnreadable("log2_max_frame_num out of range")
    poc_type = r.ue()
    if poc_type == 0:
        if r.ue() > 12:
            raise SpsUnreadable("log2_max_pic_order_cnt_lsb out of range")
    elif poc_type == 1:
        r.bit()
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    elif poc_type != 2:
        raise SpsUnreadable(f"pic_order_cnt_type {poc_type}")
    if r.ue() > 16:  # max_num_ref_frames
        raise SpsUnreadable("max_num_ref_frames above 16")
    r.bit()  # gaps_in_frame_num_value_allowed_flag
    width_mbs, height_units = r.ue() + 1, r.ue() + 1
    frame_mbs_only = bool(r.bit())
    if not frame_mbs_only:
        r.bit()  # mb_adaptive_frame_field_flag
    r.bit()  # direct_8x8_inference_flag
    width, height = width_mbs * 16, height_units * 16 * (1 if frame_mbs_only else 2)
    if r.bit():  # frame_cropping_flag: offsets in chroma units (Table 6-1)
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        sub_w = 2 if chroma_format in (1, 2) else 1
        sub_h = 2 if chroma_format == 1 else 1
        unit_x = sub_w if chroma_format else 1
        unit_y = (sub_h if chroma_format else 1) * (1 if frame_mbs_only else 2)
        width -= unit_x * (left + right)
        height -= unit_y * (top + bottom)
        if width <= 0 or height <= 0:
            raise SpsUnreadable("a cropping window larger than the picture")
    signal = full = colour = False
    primaries = transfer = matrix = 2  # unspecified
    chroma_loc: int | None = None
    square = True
    if r.bit():  # vui_parameters_present_flag
        if r.bit():  # aspect_ratio_info_present_flag
            idc = r.bits(8)
            if idc == 255:  # Extended_SAR
                sar_width, sar_height = r.bits(16), r.bits(16)
                square = sar_width == sar_height
            elif idc > 16:  # ffmpeg refuses the SPS ("illegal aspect ratio")
                raise SpsUnreadable(f"aspect_ratio_idc {idc}")
            else:
                square = idc in (0, 1)  # 0: unspecified, 1: 1:1 (Table E-1)
        if r.bit():  # overscan_info_present_flag
            r.bit()
        if r.bit():  # video_signal_type_present_flag
            signal = True
            r.bits(3)  # video_format
            full = bool(r.bit())
            if r.bit():  # colour_description_present_flag
                colour = True
                primaries, transfer, matrix = r.bits(8), r.bits(8), r.bits(8)
        if r.bit():  # chroma_loc_info_present_flag
            chroma_loc = r.ue()
            r.ue()  # bottom field
        _rest_of_vui(r)
    _trailing_bits(r)
    return Sps(
        profile=profile,
        sps_id=sps_id,
        chroma_format=chroma_format,
        bit_depth_luma=depth_luma,
        bit_depth_chroma=depth_chroma,
        frame_mbs_only=frame_mbs_only,
        width=width,
        height=height,
        video_signal_type=signal,
        full_range=full,
        colour_description=colour,
        primaries=primaries,
        transfer=transfer,
        matrix=matrix,
        chroma_loc_top=chroma_loc,
        square_pixels=square,
    )
