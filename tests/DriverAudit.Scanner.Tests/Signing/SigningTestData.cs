using System.Buffers.Binary;
using System.Text.Json;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Tests.Signing;

/// <summary>Fixture bytes, oracles and byte-patching helpers for the Authenticode tests.</summary>
internal static class SigningTestData
{
    public static string DataDir => Path.Combine(RepoPaths.Root, "tests", "DriverAudit.Scanner.Tests", "Signing", "Data");

    /// <summary>tests/fixtures/expected/signatures.json (osslsigncode + openssl, made by the fixture build).</summary>
    public static JsonElement Signatures { get; } = LoadJson(Path.Combine(RepoPaths.Fixtures, "expected", "signatures.json"));

    /// <summary>Signing/Data/oracle.json (osslsigncode + openssl, made with make-data.sh).</summary>
    public static JsonElement Oracle { get; } = LoadJson(Path.Combine(DataDir, "oracle.json"));

    public static byte[] Fixture(string arch, string name) => File.ReadAllBytes(RepoPaths.Fixture(arch, name));

    public static byte[] Data(string name) => File.ReadAllBytes(Path.Combine(DataDir, name));

    private static JsonElement LoadJson(string path) => JsonDocument.Parse(File.ReadAllText(path)).RootElement.Clone();

    public static PeImage OpenFile(byte[] bytes) => Open(bytes, ImageLayout.File);

    public static PeImage Open(byte[] bytes, ImageLayout layout)
    {
        var result = PeImage.TryOpen(new MemoryImageSource(bytes, layout, new ImageOrigin("memory")));
        return result.Image ?? throw new InvalidOperationException("fixture does not open: " + result.Reason);
    }

    // ---- header positions, computed here independently of the code under test

    public static int OptionalHeader(byte[] pe) => BinaryPrimitives.ReadInt32LittleEndian(pe.AsSpan(0x3C)) + 24;

    public static bool IsPe32Plus(byte[] pe) => BinaryPrimitives.ReadUInt16LittleEndian(pe.AsSpan(OptionalHeader(pe))) == 0x20B;

    /// <summary>File offset of data directory 4 (the certificate table entry).</summary>
    public static int CertificateDirectory(byte[] pe) => OptionalHeader(pe) + (IsPe32Plus(pe) ? 144 : 128);

    public static (int Offset, int Size) CertificateTable(byte[] pe)
    {
        var at = CertificateDirectory(pe);
        return (BinaryPrimitives.ReadInt32LittleEndian(pe.AsSpan(at)), BinaryPrimitives.ReadInt32LittleEndian(pe.AsSpan(at + 4)));
    }

    public static void SetCertificateTable(byte[] pe, long offset, long size)
    {
        var at = CertificateDirectory(pe);
        BinaryPrimitives.WriteUInt32LittleEndian(pe.AsSpan(at), (uint)offset);
        BinaryPrimitives.WriteUInt32LittleEndian(pe.AsSpan(at + 4), (uint)size);
    }

    /// <summary>
    /// Signs <paramref name="unsigned"/> the way signing tools do: zero-pad the file to 8 bytes, append one
    /// WIN_CERTIFICATE holding <paramref name="payload"/> (padded to 8), point data directory 4 at it.
    /// </summary>
    public static byte[] Embed(byte[] unsigned, byte[] payload, ushort revision = 0x0200, ushort type = 2)
    {
        var start = (unsigned.Length + 7) & ~7;
        var entryLength = 8 + payload.Length;
        var paddedEntry = (entryLength + 7) & ~7;
        var pe = new byte[start + paddedEntry];
        unsigned.CopyTo(pe, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(pe.AsSpan(start), (uint)entryLength);
        BinaryPrimitives.WriteUInt16LittleEndian(pe.AsSpan(start + 4), revision);
        BinaryPrimitives.WriteUInt16LittleEndian(pe.AsSpan(start + 6), type);
        payload.CopyTo(pe, start + 8);
        SetCertificateTable(pe, start, paddedEntry);
        return pe;
    }

    /// <summary>
    /// Reference Authenticode hash over a whole in-memory file, written straight from the specification (as
    /// tests/fixtures/scripts/signatures.py does), for differential testing of the streaming hasher.
    /// </summary>
    public static byte[] ReferenceAuthenticode(byte[] pe, System.Security.Cryptography.HashAlgorithm algorithm)
    {
        var opt = OptionalHeader(pe);
        var checksum = opt + 64;
        var certDir = CertificateDirectory(pe);
        var sizeOfHeaders = BinaryPrimitives.ReadInt32LittleEndian(pe.AsSpan(opt + 60));
        var (certOffset, certSize) = CertificateTable(pe);
        var lfanew = opt - 24;
        int sectionCount = BinaryPrimitives.ReadUInt16LittleEndian(pe.AsSpan(lfanew + 6));
        int optionalSize = BinaryPrimitives.ReadUInt16LittleEndian(pe.AsSpan(lfanew + 20));
        var data = new List<byte>();
        data.AddRange(pe[..checksum]);
        data.AddRange(pe[(checksum + 4)..certDir]);
        data.AddRange(pe[(certDir + 8)..sizeOfHeaders]);
        var sections = new List<(int Ptr, int Size)>();
        for (var i = 0; i < sectionCount; i++)
        {
            var s = opt + optionalSize + 40 * i;
            var rawSize = BinaryPrimitives.ReadInt32LittleEndian(pe.AsSpan(s + 16));
            var rawPtr = BinaryPrimitives.ReadInt32LittleEndian(pe.AsSpan(s + 20));
            if (rawSize > 0) sections.Add((rawPtr, rawSize));
        }
        var end = sizeOfHeaders;
        foreach (var (ptr, size) in sections.OrderBy(s => s.Ptr))
        {
            var stop = Math.Min(ptr + size, pe.Length); // truncated files: hash what exists
            if (ptr >= stop) continue;
            data.AddRange(pe[ptr..stop]);
            end = Math.Max(end, stop);
        }
        var tailEnd = certSize != 0 ? certOffset : pe.Length;
        if (tailEnd > end) data.AddRange(pe[end..tailEnd]);
        if (certSize == 0) data.AddRange(new byte[(8 - pe.Length % 8) % 8]);
        return algorithm.ComputeHash(data.ToArray());
    }

    /// <summary>
    /// The attribute multiset of a distinguished name in either openssl ("C = US, CN = \"a,b\"") or .NET
    /// ("CN=\"a,b\", C=US") form: order differs between the two, content must not.
    /// </summary>
    public static List<string> NameAttributes(string dn)
    {
        var parts = new List<string>();
        var current = new System.Text.StringBuilder();
        var quoted = false;
        foreach (var ch in dn)
        {
            if (ch == '"') { quoted = !quoted; continue; }
            if (ch == ',' && !quoted) { parts.Add(current.ToString()); current.Clear(); continue; }
            current.Append(ch);
        }
        parts.Add(current.ToString());
        return parts.Select(p =>
        {
            var eq = p.IndexOf('=');
            return p[..eq].Trim() + "=" + p[(eq + 1)..].Trim();
        }).OrderBy(p => p, StringComparer.Ordinal).ToList();
    }
}
