using System.Buffers.Binary;
using DriverAudit.Scanner.Images;

namespace DriverAudit.Scanner.Pe;

/// <summary>One WIN_CERTIFICATE header (Authenticode parsing comes later).</summary>
/// <param name="Offset">File offset of the entry.</param>
internal sealed record PeCertificateEntry(long Offset, uint Length, ushort Revision, ushort CertificateType)
{
    public const ushort TypePkcsSignedData = 2;
}

/// <summary>
/// Directory 4. Its "VirtualAddress" is a FILE OFFSET: the table is appended to the file and never mapped,
/// so in loaded layout it cannot be read (<see cref="PeTableStatus.Unreadable"/>).
/// </summary>
internal sealed record PeCertificateTable(PeTableStatus Status, long FileOffset, uint Size, IReadOnlyList<PeCertificateEntry> Entries)
{
    public static PeCertificateTable Absent { get; } = new(PeTableStatus.Absent, 0, 0, []);
}

internal static class PeCertificateReader
{
    public const int MaxEntries = 64;

    public static PeCertificateTable Read(PeImage image)
    {
        var dir = image.GetDirectory(4);
        if (!dir.IsPresent) return PeCertificateTable.Absent;
        if (image.Layout != ImageLayout.File)
        {
            image.Diagnose(PeDiagnosticCodes.CertificateNotMapped, "the certificate table is not mapped in a loaded image");
            return new PeCertificateTable(PeTableStatus.Unreadable, dir.VirtualAddress, dir.Size, []);
        }
        var fileLength = image.Source.Length;
        long start = dir.VirtualAddress;
        long end = start + dir.Size;
        var status = PeTableStatus.Ok;
        if (end > fileLength)
        {
            image.Diagnose(PeDiagnosticCodes.CertificateTableOutsideFile, $"certificate table [0x{start:x}, 0x{end:x}) extends past the end of the file (0x{fileLength:x})");
            end = fileLength;
            status = PeTableStatus.Incomplete;
        }
        var entries = new List<PeCertificateEntry>();
        Span<byte> header = stackalloc byte[8];
        var pos = start;
        while (pos + 8 <= end)
        {
            if (entries.Count == MaxEntries)
            {
                image.Diagnose(PeDiagnosticCodes.CertificateEntryMalformed, $"more than {MaxEntries} certificate entries; stopped");
                status = PeTableStatus.Incomplete;
                break;
            }
            if (image.ReadRaw(pos, header) < 8) { status = PeTableStatus.Incomplete; break; }
            var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
            var entry = new PeCertificateEntry(pos, length, BinaryPrimitives.ReadUInt16LittleEndian(header[4..]), BinaryPrimitives.ReadUInt16LittleEndian(header[6..]));
            if (length < 8 || pos + length > end)
            {
                image.Diagnose(PeDiagnosticCodes.CertificateEntryMalformed, $"certificate entry at 0x{pos:x} has length {length}, outside [8, {end - pos}]");
                status = PeTableStatus.Incomplete;
                break;
            }
            entries.Add(entry);
            pos += (length + 7) & ~7L; // entries are quadword aligned
        }
        if (entries.Count == 0 && status == PeTableStatus.Ok) status = PeTableStatus.Incomplete;
        return new PeCertificateTable(status, start, dir.Size, entries);
    }
}
