package klp

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/smallstep/pkcs7"
)

// signatureMagic ends a signed module (include/linux/module_signature.h).
const signatureMagic = "~Module signature appended~\n"

// pkeyIDPKCS7 is the id_type of a PKCS#7 module signature.
const pkeyIDPKCS7 = 2

// ErrSigned means the module carries a signature already.
var ErrSigned = errors.New("the module is signed already")

// Signer signs kernel modules the way the kernel checks them: a detached
// PKCS#7 signature of the module's bytes, without signed attributes,
// appended with its length and the signature marker.
type Signer struct {
	key  crypto.Signer
	cert *x509.Certificate
	hash crypto.Hash
}

// LoadSigner reads a private key and its X.509 certificate from PEM files
// (they may be one file, as the kernel's own certs/signing_key.pem is).
// hash is "sha256", "sha384" or "sha512"; "" is sha256.
func LoadSigner(keyFile, certFile, hash string) (*Signer, error) {
	s := &Signer{}
	switch hash {
	case "", "sha256":
		s.hash = crypto.SHA256
	case "sha384":
		s.hash = crypto.SHA384
	case "sha512":
		s.hash = crypto.SHA512
	default:
		return nil, fmt.Errorf("klp: sign: hash %q: use sha256, sha384 or sha512", hash)
	}
	if certFile == "" {
		certFile = keyFile
	}
	for _, f := range []string{keyFile, certFile} {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("klp: sign: %w", err)
		}
		if err := s.readPEM(data); err != nil {
			return nil, fmt.Errorf("klp: sign: %s: %w", f, err)
		}
	}
	switch {
	case s.key == nil:
		return nil, fmt.Errorf("klp: sign: no private key in %s", keyFile)
	case s.cert == nil:
		return nil, fmt.Errorf("klp: sign: no certificate in %s", certFile)
	}
	return s, nil
}

func (s *Signer) readPEM(data []byte) error {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil
		}
		switch b.Type {
		case "CERTIFICATE":
			if s.cert != nil {
				continue
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return err
			}
			s.cert = c
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if s.key != nil {
				continue
			}
			k, err := parseKey(b)
			if err != nil {
				return err
			}
			s.key = k
		}
	}
}

func parseKey(b *pem.Block) (crypto.Signer, error) {
	var k any
	var err error
	switch b.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("the private key cannot sign")
	}
	return signer, nil
}

// Sign returns module with a signature appended.
func (s *Signer) Sign(module []byte) ([]byte, error) {
	if bytes.HasSuffix(module, []byte(signatureMagic)) {
		return nil, fmt.Errorf("klp: sign: %w", ErrSigned)
	}
	sd, err := pkcs7.NewSignedData(module)
	if err != nil {
		return nil, fmt.Errorf("klp: sign: %w", err)
	}
	sd.SetDigestAlgorithm(digestOID(s.hash))
	// The kernel accepts rsaEncryption with a separate digest, not the
	// combined sha256WithRSAEncryption the library would infer.
	if s.cert.PublicKeyAlgorithm == x509.RSA {
		sd.SetEncryptionAlgorithm(pkcs7.OIDEncryptionAlgorithmRSA)
	}
	if err := sd.SignWithoutAttr(s.cert, s.key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, fmt.Errorf("klp: sign: %w", err)
	}
	sd.Detach()
	sig, err := sd.Finish()
	if err != nil {
		return nil, fmt.Errorf("klp: sign: %w", err)
	}
	// struct module_signature: algo, hash, id_type, signer_len,
	// key_id_len, 3 bytes of padding, big-endian sig_len.
	var trailer [12]byte
	trailer[2] = pkeyIDPKCS7
	binary.BigEndian.PutUint32(trailer[8:], uint32(len(sig)))
	out := make([]byte, 0, len(module)+len(sig)+len(trailer)+len(signatureMagic))
	out = append(out, module...)
	out = append(out, sig...)
	out = append(out, trailer[:]...)
	return append(out, signatureMagic...), nil
}

func digestOID(h crypto.Hash) asn1.ObjectIdentifier {
	switch h {
	case crypto.SHA384:
		return pkcs7.OIDDigestAlgorithmSHA384
	case crypto.SHA512:
		return pkcs7.OIDDigestAlgorithmSHA512
	}
	return pkcs7.OIDDigestAlgorithmSHA256
}
