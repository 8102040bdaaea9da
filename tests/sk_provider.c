/* A simulated FIDO security key for tests: an OpenSSH security-key provider (sk-api.h,
 * API 0x000a0000, OpenSSH 9.x) that holds ed25519 credentials in software. The key handle
 * is the private seed itself: no secret is kept anywhere else. Every signature says a
 * person touched the key (user presence); user verification only when it is asked for.
 * It stands for the hardware in `ssh-keygen -Y sign -f KEY` with SSH_SK_PROVIDER. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define SSH_SK_VERSION_MAJOR 0x000a0000
#define SSH_SK_ED25519 0x01
#define SSH_SK_USER_PRESENCE_REQD 0x01
#define SSH_SK_USER_VERIFICATION_REQD 0x04
#define SSH_SK_ERR_GENERAL -1
#define SSH_SK_ERR_UNSUPPORTED -2

struct sk_enroll_response {
	uint8_t flags;
	uint8_t *public_key;
	size_t public_key_len;
	uint8_t *key_handle;
	size_t key_handle_len;
	uint8_t *signature;
	size_t signature_len;
	uint8_t *attestation_cert;
	size_t attestation_cert_len;
	uint8_t *authdata;
	size_t authdata_len;
};

struct sk_sign_response {
	uint8_t flags;
	uint32_t counter;
	uint8_t *sig_r;
	size_t sig_r_len;
	uint8_t *sig_s;
	size_t sig_s_len;
};

struct sk_option;
struct sk_resident_key;

uint32_t sk_api_version(void) { return SSH_SK_VERSION_MAJOR; }

static uint8_t *copy(const uint8_t *data, size_t len)
{
	uint8_t *out = malloc(len);
	if (out != NULL)
		memcpy(out, data, len);
	return out;
}

int sk_enroll(uint32_t alg, const uint8_t *challenge, size_t challenge_len,
    const char *application, uint8_t flags, const char *pin,
    struct sk_option **options, struct sk_enroll_response **enroll_response)
{
	uint8_t seed[32], public_key[32];
	size_t len = sizeof(public_key);
	EVP_PKEY *key = NULL;
	struct sk_enroll_response *out = NULL;

	(void)challenge; (void)challenge_len; (void)application; (void)pin; (void)options;
	if (alg != SSH_SK_ED25519)
		return SSH_SK_ERR_UNSUPPORTED;
	if (RAND_bytes(seed, sizeof(seed)) != 1 ||
	    (key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed,
	    sizeof(seed))) == NULL ||
	    EVP_PKEY_get_raw_public_key(key, public_key, &len) != 1 ||
	    (out = calloc(1, sizeof(*out))) == NULL) {
		EVP_PKEY_free(key);
		return SSH_SK_ERR_GENERAL;
	}
	EVP_PKEY_free(key);
	out->flags = flags;
	out->public_key = copy(public_key, sizeof(public_key));
	out->public_key_len = sizeof(public_key);
	out->key_handle = copy(seed, sizeof(seed));
	out->key_handle_len = sizeof(seed);
	*enroll_response = out;
	return 0;
}

int sk_sign(uint32_t alg, const uint8_t *data, size_t data_len,
    const char *application, const uint8_t *key_handle, size_t key_handle_len,
    uint8_t flags, const char *pin, struct sk_option **options,
    struct sk_sign_response **sign_response)
{
	/* what the authenticator signs: SHA256(application) || flags || counter || SHA256(data) */
	uint8_t message[32 + 1 + 4 + 32], signature[64];
	size_t len = sizeof(signature);
	uint8_t signed_flags = SSH_SK_USER_PRESENCE_REQD | (flags & SSH_SK_USER_VERIFICATION_REQD);
	uint32_t counter = 1;
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *ctx = NULL;
	struct sk_sign_response *out = NULL;
	int ok;

	(void)pin; (void)options;
	if (alg != SSH_SK_ED25519 || key_handle_len != 32)
		return SSH_SK_ERR_UNSUPPORTED;
	message[32] = signed_flags;
	message[33] = counter >> 24; message[34] = counter >> 16;
	message[35] = counter >> 8; message[36] = counter;
	ok = EVP_Digest(application, strlen(application), message, NULL, EVP_sha256(), NULL) == 1
	    && EVP_Digest(data, data_len, message + 37, NULL, EVP_sha256(), NULL) == 1
	    && (key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, key_handle,
	    key_handle_len)) != NULL
	    && (ctx = EVP_MD_CTX_new()) != NULL
	    && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1
	    && EVP_DigestSign(ctx, signature, &len, message, sizeof(message)) == 1
	    && (out = calloc(1, sizeof(*out))) != NULL;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	if (!ok)
		return SSH_SK_ERR_GENERAL;
	out->flags = signed_flags;
	out->counter = counter;
	out->sig_r = copy(signature, len);
	out->sig_r_len = len;
	*sign_response = out;
	return 0;
}

int sk_load_resident_keys(const char *pin, struct sk_option **options,
    struct sk_resident_key ***rks, size_t *nrks)
{
	(void)pin; (void)options; (void)rks; (void)nrks;
	return SSH_SK_ERR_UNSUPPORTED;
}
