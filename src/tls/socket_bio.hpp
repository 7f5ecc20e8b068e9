// The BIO between a TlsConnection and its TCP socket: reads straight from the socket, writes
// gather records in a send buffer that leaves in one send() when the owner flushes.
//
// It also serves OpenSSL 3.0's kernel-TLS offload hook in user space. A connection made with
// `seal = true` sets SSL_OP_ENABLE_KTLS; when OpenSSL installs the TLS 1.3 application sending
// key it offers it to this BIO (BIO_CTRL_SET_KTLS, the Linux kTLS key structure) exactly as it
// would offer it to the kernel; the BIO accepts AES-GCM keys when record_protection.hpp can use
// them, and from then on OpenSSL hands it each record's plaintext (the caller's own buffer,
// no copy) and the BIO seals it straight into the send buffer. Anything else (TLS 1.2,
// ChaCha20, a build without ipsec-mb) is refused, and OpenSSL seals as usual. OpenSSL 3.0 offers
// no TLS 1.3 receiving key: record_reader.hpp takes receiving over after the handshake, reading
// the socket itself (this BIO's reads serve OpenSSL until then). Key updates: see
// set_sealing_secret().
//
// The control codes 72/74/75 are OpenSSL's internal BIO_CTRL_SET_KTLS,
// BIO_CTRL_SET_KTLS_TX_SEND_CTRL_MSG and BIO_CTRL_CLEAR_KTLS_TX_CTRL_MSG (include/internal/bio.h
// of OpenSSL 3.0, next to the public BIO_CTRL_GET_KTLS_SEND, 73); the key structure is the
// kernel's (linux/tls.h). A later OpenSSL that changes them stops offering keys this way and
// sealing simply stays with OpenSSL; tests/unit/tls_test.cpp checks which side sealed.
#pragma once

#include <openssl/bio.h>

#include <cstddef>
#include <cstdint>
#include <span>

namespace porthole::tls {

// A BIO on `fd` (not owned, non-blocking). `seal`: offer to seal TLS 1.3 records.
BIO* new_socket_bio(int fd, size_t send_buffer, bool seal);

// Records this BIO sealed itself (0 while OpenSSL seals).
uint64_t socket_bio_sealed_records(BIO* b);

// The sending traffic secret after a TLS 1.3 KeyUpdate (from OpenSSL's keylog callback, which
// runs right after OpenSSL wrote the KeyUpdate message with the old key): the next record uses
// the key derived from it, sequence 0. False when the BIO does not seal or the derivation
// failed; the BIO then refuses every further write (the connection fails rather than send
// records the peer cannot read).
bool set_sealing_secret(BIO* b, std::span<const uint8_t> secret);

// Seals a fatal alert (RFC 8446 §6) after what is queued and sends what the socket takes; no
// write is accepted after it. For failures OpenSSL does not see (record_reader.hpp): false when
// this BIO does not seal (then nothing is sent).
bool socket_bio_send_alert(BIO* b, uint8_t description);

// Whether the send buffer can take another write: below its size, after sending what the
// socket takes. The owner asks before each SSL_write, so that a write never has to be refused
// half-way (OpenSSL would keep a pointer to the caller's bytes for the retry); the BIO itself
// takes every record it is given, overshooting by at most one write.
bool socket_bio_make_room(BIO* b);

// Frees the send buffer while it is empty (an idle connection).
void socket_bio_release(BIO* b);

}  // namespace porthole::tls
