using System.Buffers.Binary;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Signing;

/// <summary>Header field positions that only Authenticode needs (kept here rather than widening <see cref="PeImage"/>).</summary>
internal static class PeImageSigningExtensions
{
    private const int OptionalHeaderStart = 4 + 20; // "PE\0\0" + COFF header
    private const int ChecksumInOptional = 64;      // same in PE32 and PE32+
    private const int CertificateEntryInPe32 = 128, CertificateEntryInPe32Plus = 144;

    /// <summary>File offset of IMAGE_OPTIONAL_HEADER.CheckSum.</summary>
    public static long ChecksumFieldOffset(this PeImage image) =>
        (long)image.PeHeaderOffset + OptionalHeaderStart + ChecksumInOptional;

    /// <summary>
    /// File offset of the 8-byte certificate-table data directory entry (index 4), or null when the header does not
    /// have one: NumberOfRvaAndSizes below 5, or a SizeOfOptionalHeader too small to hold it (the loader and
    /// <see cref="PeImage.GetDirectory"/> then treat the directory as absent, so the bytes there are ordinary header bytes).
    /// </summary>
    public static long? CertificateDirectoryEntryOffset(this PeImage image)
    {
        if (image.NumberOfRvaAndSizes < 5) return null;
        var inOptional = image.Is64Bit ? CertificateEntryInPe32Plus : CertificateEntryInPe32;
        Span<byte> size = stackalloc byte[2];
        if (image.ReadRaw(image.PeHeaderOffset + 4 + 16, size) < 2) return null; // COFF SizeOfOptionalHeader
        if (BinaryPrimitives.ReadUInt16LittleEndian(size) < inOptional + 8) return null;
        return (long)image.PeHeaderOffset + OptionalHeaderStart + inOptional;
    }
}
