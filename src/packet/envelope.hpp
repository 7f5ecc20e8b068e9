// Envelope: the 3GPP TS 24.322 §7 framing, Type(1) | Length(2, big-endian, whole envelope) |
// Payload, its encoder and a stream decoder that accepts arbitrary chunks. Pure code: no I/O.
//
// Decoding does not allocate per envelope: an envelope that lies whole inside the chunk is handed
// out as a view into the chunk; only one that straddles chunk boundaries is gathered in the
// decoder's own buffers, which grow to the largest such envelope and then stay (an idle session
// that never saw one costs no buffer). The rest of a straddling envelope need not be copied
// there either: the caller may read it straight into partial_room() and commit_partial() it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace porthole::packet {

enum class EnvelopeType : uint8_t {
    ip_packet = 0x01,          // TS 24.322: one IPv4 or IPv6 packet
    ip_packet_offload = 0x90,  // porthole: IP packet + offload trailer (packet/offload.hpp)
    config_request = 0x80,     // porthole extension types (see docs/protocol.md)
    config_assign = 0x81,
    keepalive_request = 0x82,
    keepalive_reply = 0x83,
    close = 0x84,
};

inline constexpr size_t kHeaderSize = 3;
inline constexpr size_t kMaxEnvelopeSize = 0xffff;  // the Length field's limit
inline constexpr size_t kMinIpEnvelopeSize = 4;     // type 1 must carry at least one octet

struct Envelope {
    uint8_t type;
    std::span<const std::byte> payload;
};

// Writes the header for an envelope of payload_size into out[0..3). payload_size must be at most
// kMaxEnvelopeSize - kHeaderSize (callers check; see fits()).
inline void write_header(std::byte* out, uint8_t type, size_t payload_size) {
    size_t total = payload_size + kHeaderSize;
    out[0] = std::byte(type);
    out[1] = std::byte(total >> 8);
    out[2] = std::byte(total & 0xff);
}

[[nodiscard]] inline constexpr bool fits(size_t payload_size, size_t max_envelope) {
    return payload_size + kHeaderSize <= max_envelope;
}

enum class DecodeError : uint8_t {
    none,
    length_too_small,  // Length < 3, or < 4 for an IP packet
    length_too_large,  // Length above the configured maximum
    not_ip_packet,     // type 1 whose payload is not a well-formed IPv4/IPv6 packet
    bad_offload,       // type 0x90 whose trailer does not describe its packet
};

[[nodiscard]] std::string_view to_string(DecodeError e);

// Reassembles envelopes from a byte stream cut anywhere. After an error the decoder stays failed.
class EnvelopeDecoder {
public:
    explicit EnvelopeDecoder(size_t max_envelope = kMaxEnvelopeSize);

    // Calls sink(const Envelope&) for each whole envelope in data, in order. Views handed to
    // sink are valid only during the call. Returns the first protocol error met, or none.
    template <class Sink>
    DecodeError feed(std::span<const std::byte> data, Sink&& sink);

    // Where the rest of the envelope now partly received goes, once its header is known: the
    // caller may write the next bytes of the stream there (up to the span's size) and hand them
    // over with commit_partial() instead of feed(), so that an envelope spanning TLS records is
    // not copied a second time. Empty when no envelope is partly received, its header is not
    // complete yet, or the decoder has failed: then the next bytes go through feed().
    [[nodiscard]] std::span<std::byte> partial_room();
    // Takes n bytes (at most partial_room().size()) written into partial_room(); calls sink for
    // the envelope if they complete it. Returns the first protocol error met, or none.
    template <class Sink>
    DecodeError commit_partial(size_t n, Sink&& sink);

    [[nodiscard]] DecodeError error() const { return error_; }
    // Frees the reassembly buffers when no envelope is partly received. Views handed out by an
    // earlier feed() must no longer be in use.
    void release_buffers() {
        if (partial_size_ != 0) return;
        std::vector<std::byte>().swap(parts_[0]);
        std::vector<std::byte>().swap(parts_[1]);
    }
    [[nodiscard]] size_t buffered() const { return partial_size_; }
    [[nodiscard]] size_t max_envelope() const { return max_; }

private:
    DecodeError check_header(const std::byte* h, size_t& total);
    DecodeError check_envelope(uint8_t type, std::span<const std::byte> payload);
    template <class Sink>
    DecodeError finish_partial(Sink&& sink);

    size_t max_;
    // Two buffers, used in turn: an envelope completed from one of them is handed out as a view
    // that must stay valid until the next feed(), while the new tail goes to the other.
    std::vector<std::byte> parts_[2];
    int cur_ = 0;
    size_t partial_size_ = 0;
    size_t partial_total_ = 0;  // 0 until the header of the partial envelope is known
    DecodeError error_ = DecodeError::none;
};

template <class Sink>
DecodeError EnvelopeDecoder::feed(std::span<const std::byte> data, Sink&& sink) {
    if (error_ != DecodeError::none) return error_;
    if (data.empty()) return DecodeError::none;
    const std::byte* p = data.data();
    size_t left = data.size();

    // 1. Finish an envelope that straddled the previous chunk.
    if (partial_size_ > 0) {
        auto& part = parts_[cur_];
        if (partial_total_ == 0) {
            size_t take = std::min(left, kHeaderSize - partial_size_);
            std::memcpy(part.data() + partial_size_, p, take);
            partial_size_ += take, p += take, left -= take;
            if (partial_size_ < kHeaderSize) return DecodeError::none;
            if ((error_ = check_header(part.data(), partial_total_)) != DecodeError::none)
                return error_;
            if (part.size() < partial_total_) part.resize(partial_total_);
        }
        size_t take = std::min(left, partial_total_ - partial_size_);
        std::memcpy(part.data() + partial_size_, p, take);
        partial_size_ += take, p += take, left -= take;
        if (partial_size_ < partial_total_) return DecodeError::none;
        if (finish_partial(sink) != DecodeError::none) return error_;
    }

    // 2. Whole envelopes inside this chunk: views, no copy.
    while (left >= kHeaderSize) {
        size_t total = 0;
        if ((error_ = check_header(p, total)) != DecodeError::none) return error_;
        if (left < total) break;
        Envelope env{uint8_t(p[0]), {p + kHeaderSize, total - kHeaderSize}};
        if ((error_ = check_envelope(env.type, env.payload)) != DecodeError::none) return error_;
        sink(env);
        p += total, left -= total;
    }

    // 3. Keep the tail for the next chunk.
    if (left > 0) {
        cur_ ^= 1;  // the other buffer: the current one may hold an envelope handed out above
        auto& part = parts_[cur_];
        size_t want = kHeaderSize;
        if (left >= kHeaderSize) {
            if ((error_ = check_header(p, partial_total_)) != DecodeError::none) return error_;
            want = partial_total_;
        } else {
            partial_total_ = 0;
        }
        // Grows to the largest envelope seen, then stays: no allocation per envelope.
        if (part.size() < std::max(want, left)) part.resize(std::max(want, left));
        std::memcpy(part.data(), p, left);
        partial_size_ = left;
    }
    return DecodeError::none;
}

inline std::span<std::byte> EnvelopeDecoder::partial_room() {
    if (error_ != DecodeError::none || partial_size_ == 0 || partial_total_ == 0) return {};
    return {parts_[cur_].data() + partial_size_, partial_total_ - partial_size_};
}

template <class Sink>
DecodeError EnvelopeDecoder::commit_partial(size_t n, Sink&& sink) {
    if (error_ != DecodeError::none) return error_;
    if (n == 0) return DecodeError::none;
    partial_size_ += std::min(n, partial_total_ - partial_size_);
    if (partial_size_ < partial_total_) return DecodeError::none;
    return finish_partial(sink);
}

// The partly received envelope in parts_[cur_] is complete: checks it and hands it out.
template <class Sink>
DecodeError EnvelopeDecoder::finish_partial(Sink&& sink) {
    auto& part = parts_[cur_];
    Envelope env{uint8_t(part[0]), {part.data() + kHeaderSize, partial_total_ - kHeaderSize}};
    partial_size_ = partial_total_ = 0;
    if ((error_ = check_envelope(env.type, env.payload)) != DecodeError::none) return error_;
    sink(env);
    return DecodeError::none;
}

// Appends envelopes into a caller-owned buffer so that many travel in one TLS record.
// The data path reserves the header, reads the payload in place, then commits: no copy.
class EnvelopeWriter {
public:
    EnvelopeWriter(std::byte* buf, size_t capacity) : buf_(buf), cap_(capacity) {}

    [[nodiscard]] size_t size() const { return size_; }
    [[nodiscard]] size_t room() const { return cap_ - size_; }
    // Space where the next payload goes (after a reserved header).
    [[nodiscard]] std::span<std::byte> payload_space() const {
        return room() > kHeaderSize ? std::span<std::byte>(buf_ + size_ + kHeaderSize,
                                                           std::min(room() - kHeaderSize,
                                                                    kMaxEnvelopeSize - kHeaderSize))
                                    : std::span<std::byte>();
    }
    // Commits a payload of n bytes written into payload_space().
    void commit(uint8_t type, size_t n) {
        write_header(buf_ + size_, type, n);
        size_ += kHeaderSize + n;
    }
    // Copies a payload in; false (and nothing written) when it does not fit.
    bool append(uint8_t type, std::span<const std::byte> payload) {
        if (payload.size() + kHeaderSize > room() ||
            payload.size() + kHeaderSize > kMaxEnvelopeSize)
            return false;
        if (!payload.empty())
            std::memcpy(buf_ + size_ + kHeaderSize, payload.data(), payload.size());
        commit(type, payload.size());
        return true;
    }

private:
    std::byte* buf_;
    size_t cap_;
    size_t size_ = 0;
};

}  // namespace porthole::packet
