#!/bin/sh
# Regenerates nested_dual.sys and padded_signed.sys from tests/fixtures/bin/x64/pool_modern.sys with openssl and
# osslsigncode 2.9 (keys are created in a temp dir and thrown away, so every run gives new certificates: update
# oracle.json from the `osslsigncode verify` and `openssl x509 -fingerprint -sha1` output afterwards).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../../fixtures/bin/x64/pool_modern.sys
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT; cd "$t"
# nested_dual.sys: primary SHA-1 signature by a leaf issued by a CA (both in the blob), nested SHA-256 signature by
# a self-signed ECDSA WDK-style test certificate, like dual-signed (SHA-1 + SHA-256) drivers.
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -subj "/C=US/O=Fabrikam/CN=Fabrikam Root CA" -days 3650 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=keyCertSign,cRLSign"
openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj "/C=US/O=Fabrikam/CN=Fabrikam Driver Signing"
printf "extendedKeyUsage=codeSigning\nbasicConstraints=CA:FALSE\n" > ext.cnf
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 3650 -extfile ext.cnf
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout wdk.key -out wdk.pem \
  -subj "/CN=WDKTestCert nested,133700000000000001" -days 3650 -addext "extendedKeyUsage=codeSigning"
cat leaf.pem ca.pem > chain.pem
osslsigncode sign -certs chain.pem -key leaf.key -h sha1 -in "$src" -out p1.sys
osslsigncode sign -nest -certs wdk.pem -key wdk.key -h sha256 -in p1.sys -out "$here/nested_dual.sys"
# padded_signed.sys: pool_modern.sys + "abcde" (3077 bytes, not a multiple of 8), signed: the signer pads with 3 zeros.
openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -subj "/CN=Exp" -days 30
cp "$src" u.sys; printf 'abcde' >> u.sys
osslsigncode sign -certs c.pem -key k.pem -h sha256 -in u.sys -out "$here/padded_signed.sys"
# test_only.sys / partner_signed.sys: the same CA-issued chain (leaf + CA in the blob, nothing self-signed), the leaf
# named like Microsoft's partner test PKI ("... (TEST ONLY)") or not: only the name marks the test certificate.
openssl req -x509 -newkey rsa:2048 -nodes -keyout pca.key -out pca.pem -subj "/O=Contoso/CN=Contoso Partner CA" -days 3650 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=keyCertSign,cRLSign"
for leaf in test_only partner_signed; do
  if [ $leaf = test_only ]; then cn="Contoso OEM Cert 2013 (TEST ONLY)"; else cn="Contoso OEM Cert 2013"; fi
  openssl req -newkey rsa:2048 -nodes -keyout $leaf.key -out $leaf.csr -subj "/O=Contoso/CN=$cn"
  openssl x509 -req -in $leaf.csr -CA pca.pem -CAkey pca.key -CAcreateserial -out $leaf.pem -days 3650 -extfile ext.cnf
  cat $leaf.pem pca.pem > $leaf.chain.pem
  osslsigncode sign -certs $leaf.chain.pem -key $leaf.key -h sha256 -in "$src" -out "$here/$leaf.sys"
done
osslsigncode verify -in "$here/nested_dual.sys" || true
osslsigncode verify -in "$here/padded_signed.sys" || true
