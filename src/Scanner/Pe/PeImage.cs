using System.Buffers;
using System.Buffers.Binary;
using System.Reflection.PortableExecutable;
using System.Text;
using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Images;

namespace DriverAudit.Scanner.Pe;

/// <summary>
/// A PE image over an <see cref="IImageSource"/>, in file or loaded layout; everything above the RVA
/// readers is layout-agnostic. Headers are parsed eagerly (a few hundred bytes); directories are parsed on
/// first access and cached. Hostile input never throws out of this type: a bad table is read as far as it is
/// sound and leaves a <see cref="PeDiagnostic"/>. The image does not own the source (the caller disposes it).
/// Not thread-safe: one image is meant to be used by one thread.
/// </summary>
internal sealed partial class PeImage
{
    /// <summary>Windows refuses more than 96; anything beyond this cap is not an image worth parsing.</summary>
    public const int MaxSections = 1024;
    private const int DosHeaderSize = 0x40;
    private const int CoffSize = 20;
    private const int Pe32OptionalSize = 224, Pe32PlusOptionalSize = 240;
    private const int MaxDiagnostics = 256;

    private readonly BlockCachedReader _reader;
    private readonly PeSection[] _sections;
    private readonly PeDataDirectory[] _directories;
    private readonly List<PeDiagnostic> _diagnostics = [];

    private PeImage(IImageSource source, PEHeaders headers, uint peHeaderOffset)
    {
        _reader = new BlockCachedReader(source);
        Source = source;
        PeHeaderOffset = peHeaderOffset;
        var coff = headers.CoffHeader;
        var pe = headers.PEHeader!;
        MachineValue = (ushort)coff.Machine;
        Machine = MachineNames.Family(MachineValue);
        Is64Bit = pe.Magic == PEMagic.PE32Plus;
        Characteristics = (ushort)coff.Characteristics;
        TimeDateStamp = unchecked((uint)coff.TimeDateStamp);
        Subsystem = (ushort)pe.Subsystem;
        DllCharacteristics = (ushort)pe.DllCharacteristics;
        ImageBase = pe.ImageBase;
        SectionAlignment = unchecked((uint)pe.SectionAlignment);
        FileAlignment = unchecked((uint)pe.FileAlignment);
        SizeOfImage = unchecked((uint)pe.SizeOfImage);
        SizeOfHeaders = unchecked((uint)pe.SizeOfHeaders);
        CheckSum = pe.CheckSum;
        AddressOfEntryPoint = unchecked((uint)pe.AddressOfEntryPoint);
        NumberOfRvaAndSizes = unchecked((uint)pe.NumberOfRvaAndSizes);

        _directories =
        [
            Dir(pe.ExportTableDirectory), Dir(pe.ImportTableDirectory), Dir(pe.ResourceTableDirectory),
            Dir(pe.ExceptionTableDirectory), Dir(pe.CertificateTableDirectory), Dir(pe.BaseRelocationTableDirectory),
            Dir(pe.DebugTableDirectory), Dir(pe.CopyrightTableDirectory), Dir(pe.GlobalPointerTableDirectory),
            Dir(pe.ThreadLocalStorageTableDirectory), Dir(pe.LoadConfigTableDirectory), Dir(pe.BoundImportTableDirectory),
            Dir(pe.ImportAddressTableDirectory), Dir(pe.DelayImportTableDirectory), Dir(pe.CorHeaderTableDirectory),
            default,
        ];

        var headersArray = headers.SectionHeaders;
        _sections = new PeSection[headersArray.Length];
        for (var i = 0; i < _sections.Length; i++)
        {
            var s = headersArray[i];
            _sections[i] = new PeSection(i, s.Name, unchecked((uint)s.VirtualAddress), unchecked((uint)s.VirtualSize),
                unchecked((uint)s.PointerToRawData), unchecked((uint)s.SizeOfRawData), unchecked((uint)s.SectionCharacteristics));
        }

        static PeDataDirectory Dir(DirectoryEntry e) => new(unchecked((uint)e.RelativeVirtualAddress), unchecked((uint)e.Size));
    }

    public IImageSource Source { get; }
    public ImageLayout Layout => Source.Layout;

    /// <summary>e_lfanew: file offset (and RVA) of the PE signature.</summary>
    public uint PeHeaderOffset { get; }
    public PeMachine Machine { get; }
    public ushort MachineValue { get; }
    /// <summary>True for PE32+ (optional header magic 0x20b).</summary>
    public bool Is64Bit { get; }
    public ushort Subsystem { get; }
    /// <summary>IMAGE_FILE_HEADER.Characteristics.</summary>
    public ushort Characteristics { get; }
    public ushort DllCharacteristics { get; }
    public ulong ImageBase { get; }
    public uint SectionAlignment { get; }
    public uint FileAlignment { get; }
    public uint SizeOfImage { get; }
    public uint SizeOfHeaders { get; }
    public uint TimeDateStamp { get; }
    public uint CheckSum { get; }
    public uint AddressOfEntryPoint { get; }
    public uint NumberOfRvaAndSizes { get; }

    /// <summary>Sections in table order.</summary>
    public IReadOnlyList<PeSection> Sections => _sections;

    /// <summary>Problems found so far by the lazy readers (grows as directories are first read).</summary>
    public IReadOnlyList<PeDiagnostic> Diagnostics => _diagnostics;

    /// <summary>Data directory by index (0..15); entries beyond NumberOfRvaAndSizes read as empty.</summary>
    public PeDataDirectory GetDirectory(int index) =>
        (uint)index < (uint)_directories.Length ? _directories[index] : default;

    /// <summary>Directory 12: the import address table range.</summary>
    public PeDataDirectory IatDirectory => _directories[12];

    /// <summary>Directory 5 is declared (base relocations present).</summary>
    public bool HasRelocations => _directories[5].IsPresent;

    // ---------------------------------------------------------------- opening

    /// <summary>
    /// Sniffs and parses the headers. Never throws for bad input; I/O errors of the source propagate.
    /// Reads the DOS header, the NT headers and the section table only.
    /// </summary>
    public static PeOpenResult TryOpen(IImageSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        try
        {
            return Open(source);
        }
        catch (BadImageFormatException e)
        {
            return PeOpenResult.Fail(PeOpenStatus.Malformed, e.Message);
        }
        catch (ArgumentException e)
        {
            return PeOpenResult.Fail(PeOpenStatus.Malformed, e.Message);
        }
    }

    private static PeOpenResult Open(IImageSource source)
    {
        Span<byte> dos = stackalloc byte[DosHeaderSize];
        var n = source.Read(0, dos);
        if (n < 2 && source.Length >= DosHeaderSize)
            return PeOpenResult.Fail(PeOpenStatus.Truncated, "DOS header cannot be read (page missing)");
        if (n < 2 || dos[0] != (byte)'M' || dos[1] != (byte)'Z')
            return PeOpenResult.Fail(PeOpenStatus.NotPe, "no MZ signature");
        if (n < DosHeaderSize)
            return PeOpenResult.Fail(PeOpenStatus.Truncated, $"DOS header truncated ({n} of {DosHeaderSize} bytes)");

        var lfanew = BinaryPrimitives.ReadUInt32LittleEndian(dos[0x3C..]);
        if (lfanew > source.Length - 4)
            return PeOpenResult.Fail(PeOpenStatus.NotPe, $"no PE signature: e_lfanew 0x{lfanew:x} points past the end of the image (0x{source.Length:x})");

        Span<byte> nt = stackalloc byte[4 + CoffSize + 2];
        n = source.Read(lfanew, nt);
        if (n < 4)
            return PeOpenResult.Fail(PeOpenStatus.Truncated, $"PE signature at 0x{lfanew:x} cannot be read");
        if (BinaryPrimitives.ReadUInt32LittleEndian(nt) != 0x00004550)
            return PeOpenResult.Fail(PeOpenStatus.NotPe, $"no PE signature at e_lfanew 0x{lfanew:x}");
        if (n < 4 + CoffSize)
            return PeOpenResult.Fail(PeOpenStatus.Truncated, "COFF header runs past the end of the image");

        int numberOfSections = BinaryPrimitives.ReadUInt16LittleEndian(nt[6..]);
        int sizeOfOptional = BinaryPrimitives.ReadUInt16LittleEndian(nt[20..]);
        if (sizeOfOptional < 2)
            return PeOpenResult.Fail(PeOpenStatus.Malformed, $"SizeOfOptionalHeader {sizeOfOptional} leaves no optional header");
        if (n < nt.Length)
            return PeOpenResult.Fail(PeOpenStatus.Truncated, "optional header runs past the end of the image");
        var magic = BinaryPrimitives.ReadUInt16LittleEndian(nt[24..]);
        int standardOptional = magic switch { 0x10b => Pe32OptionalSize, 0x20b => Pe32PlusOptionalSize, _ => 0 };
        if (standardOptional == 0)
            return PeOpenResult.Fail(PeOpenStatus.Malformed, $"unknown optional header magic 0x{magic:x}");
        if (numberOfSections > MaxSections)
            return PeOpenResult.Fail(PeOpenStatus.Malformed, $"NumberOfSections {numberOfSections} exceeds the limit of {MaxSections}");

        long sectionTable = (long)lfanew + 4 + CoffSize + sizeOfOptional;
        long sectionTableSize = 40L * numberOfSections;
        if (sectionTable + sectionTableSize > source.Length)
            return PeOpenResult.Fail(PeOpenStatus.Truncated, $"section table ({numberOfSections} sections at 0x{sectionTable:x}) runs past the end of the image");

        // PEHeaders reads the section table right after a standard-size optional header and reads all 16
        // directories, whereas the loader honours SizeOfOptionalHeader and NumberOfRvaAndSizes. Hand it a
        // normalized copy (PE header moved to 0x40) so it sees what the loader sees, and no CLI header to chase.
        var optionalRead = Math.Min(sizeOfOptional, standardOptional);
        var length = DosHeaderSize + 4 + CoffSize + standardOptional + (int)sectionTableSize;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var copy = buffer.AsSpan(0, length);
            copy.Clear();
            dos.CopyTo(copy);
            BinaryPrimitives.WriteUInt32LittleEndian(copy[0x3C..], DosHeaderSize);
            var ntCopy = copy.Slice(DosHeaderSize, 4 + CoffSize + optionalRead);
            if (source.Read(lfanew, ntCopy) < ntCopy.Length)
                return PeOpenResult.Fail(PeOpenStatus.Truncated, "optional header cannot be read (past the end or page missing)");
            var sectionsCopy = copy.Slice(DosHeaderSize + 4 + CoffSize + standardOptional, (int)sectionTableSize);
            if (source.Read(sectionTable, sectionsCopy) < sectionsCopy.Length)
                return PeOpenResult.Fail(PeOpenStatus.Truncated, "section table cannot be read (past the end or page missing)");

            var optional = copy.Slice(DosHeaderSize + 4 + CoffSize, standardOptional);
            var directoriesAt = magic == 0x10b ? 96 : 112;
            var declared = BinaryPrimitives.ReadUInt32LittleEndian(optional[(directoriesAt - 4)..]);
            var usable = (int)Math.Min(declared, 16u);
            optional[(directoriesAt + 8 * usable)..].Clear();
            optional.Slice(directoriesAt + 8 * 14, 8).Clear(); // CLI header: not a driver concern

            using var stream = new MemoryStream(buffer, 0, length, writable: false);
            var headers = new PEHeaders(stream, length, source.Layout == ImageLayout.Loaded);
            if (headers.PEHeader is null)
                return PeOpenResult.Fail(PeOpenStatus.Malformed, "no optional header");
            return new PeOpenResult(PeOpenStatus.Ok, new PeImage(source, headers, lfanew), null);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // ---------------------------------------------------------------- sections and RVAs

    /// <summary>Index of the first section whose mapped range contains <paramref name="rva"/>, or -1.</summary>
    public int FindSectionIndex(uint rva)
    {
        var sections = _sections;
        for (var i = 0; i < sections.Length; i++)
            if (sections[i].Contains(rva)) return i;
        return -1;
    }

    /// <summary>The section containing <paramref name="rva"/>, or null (headers, gaps, outside the image).</summary>
    public PeSection? FindSection(uint rva)
    {
        var i = FindSectionIndex(rva);
        return i < 0 ? null : _sections[i];
    }

    /// <summary>
    /// File layout: the file offset holding the byte at <paramref name="rva"/>, or null when no file byte backs it
    /// (outside every section and the headers, or in a section's zero-filled tail). Loaded layout: the RVA itself
    /// when it lies inside the source.
    /// </summary>
    public uint? RvaToOffset(uint rva)
    {
        if (Layout == ImageLayout.Loaded) return rva < Source.Length ? rva : null;
        var i = FindSectionIndex(rva);
        if (i >= 0)
        {
            var s = _sections[i];
            var delta = rva - s.Rva;
            if (delta >= s.RawSize) return null;
            var offset = (ulong)RawPointer(s) + delta;
            return offset < (ulong)Source.Length ? (uint)offset : null;
        }
        return rva < SizeOfHeaders && rva < Source.Length ? rva : null;
    }

    // pefile and the loader round PointerToRawData down to 512 when FileAlignment is at least that.
    private uint RawPointer(PeSection s) => FileAlignment >= 0x200 ? s.RawPointer & ~0x1FFu : s.RawPointer;

    /// <summary>
    /// Bytes from <paramref name="rva"/> to the end of what contains it: its section's mapped range, the
    /// headers, or (loaded layout, outside every section) the image. 0 when nothing contains it.
    /// </summary>
    public uint SpanLimit(uint rva)
    {
        var i = FindSectionIndex(rva);
        if (i >= 0)
        {
            var s = _sections[i];
            return (uint)Math.Min((ulong)s.Rva + s.MappedSize - rva, uint.MaxValue);
        }
        if (rva < SizeOfHeaders) return SizeOfHeaders - rva;
        if (Layout == ImageLayout.Loaded && rva < Source.Length) return (uint)Math.Min(Source.Length - rva, uint.MaxValue);
        return 0;
    }

    /// <summary>
    /// How many bytes of <paramref name="section"/> hold data worth scanning: in a file, its raw data (the
    /// zero-filled tail a loader would add carries nothing, and a hostile VirtualSize may claim gigabytes); in a
    /// loaded image, its mapped range inside SizeOfImage. Work that reads whole sections is sized by this.
    /// </summary>
    public uint DataSize(PeSection section)
    {
        if (Layout == ImageLayout.Loaded)
            return section.Rva >= SizeOfImage ? 0 : Math.Min(section.MappedSize, SizeOfImage - section.Rva);
        var inFile = section.RawPointer >= Source.Length ? 0 : (ulong)Source.Length - section.RawPointer;
        return (uint)Math.Min(Math.Min(section.MappedSize, section.RawSize), inFile);
    }

    /// <summary>
    /// Copies the bytes of the mapped image at <paramref name="rva"/> and returns how many were copied. Stops at
    /// the end of the image, at bytes no section maps, or (loaded layout) at the first missing page. A section's
    /// tail beyond its raw data reads as zeros, as in memory.
    /// </summary>
    public int ReadRva(uint rva, Span<byte> destination)
    {
        if (Layout == ImageLayout.Loaded) return _reader.Read(rva, destination);
        var total = 0;
        while (total < destination.Length)
        {
            var cur = (ulong)rva + (ulong)total;
            if (cur > uint.MaxValue) break;
            var r = (uint)cur;
            var remaining = destination.Length - total;
            var i = FindSectionIndex(r);
            int got;
            if (i >= 0)
            {
                var s = _sections[i];
                var delta = r - s.Rva;
                var inSection = (int)Math.Min((ulong)s.Rva + s.MappedSize - r, (ulong)remaining);
                if (delta < s.RawSize)
                {
                    var fromFile = (int)Math.Min(s.RawSize - delta, (uint)inSection);
                    got = _reader.Read((long)RawPointer(s) + delta, destination.Slice(total, fromFile));
                    if (got < fromFile) { total += got; break; } // file ends inside the raw data
                }
                else
                {
                    got = inSection;
                    destination.Slice(total, got).Clear(); // uninitialized tail: zeros in memory
                }
            }
            else if (r < SizeOfHeaders)
            {
                var want = (int)Math.Min(SizeOfHeaders - r, (uint)remaining);
                got = _reader.Read(r, destination.Slice(total, want));
                if (got < want) { total += got; break; }
            }
            else break;
            if (got <= 0) break;
            total += got;
        }
        return total;
    }

    /// <summary>True when all of <paramref name="destination"/> was filled from <paramref name="rva"/>.</summary>
    public bool TryReadRva(uint rva, Span<byte> destination) => ReadRva(rva, destination) == destination.Length;

    public bool TryReadUInt16(uint rva, out ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        var ok = TryReadRva(rva, b);
        value = ok ? BinaryPrimitives.ReadUInt16LittleEndian(b) : (ushort)0;
        return ok;
    }

    public bool TryReadUInt32(uint rva, out uint value)
    {
        Span<byte> b = stackalloc byte[4];
        var ok = TryReadRva(rva, b);
        value = ok ? BinaryPrimitives.ReadUInt32LittleEndian(b) : 0;
        return ok;
    }

    public bool TryReadUInt64(uint rva, out ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        var ok = TryReadRva(rva, b);
        value = ok ? BinaryPrimitives.ReadUInt64LittleEndian(b) : 0;
        return ok;
    }

    /// <summary>
    /// Reads a NUL-terminated ASCII string of at most <paramref name="maxLength"/> characters, never past the
    /// section (or headers) containing <paramref name="rva"/>. Non-ASCII bytes become '?'.
    /// </summary>
    public PeStringRead ReadAsciiZ(uint rva, int maxLength)
    {
        var limit = (int)Math.Min((uint)Math.Clamp(maxLength, 0, 0x10000), SpanLimit(rva));
        if (limit == 0) return new PeStringRead(null, PeStringStatus.Unreadable);
        // Most names are short: try 64 bytes first, then the rest of the allowance.
        Span<byte> small = stackalloc byte[64];
        var first = small[..Math.Min(limit, small.Length)];
        var got = ReadRva(rva, first);
        var nul = first[..got].IndexOf((byte)0);
        if (nul >= 0) return new PeStringRead(Encoding.ASCII.GetString(first[..nul]), PeStringStatus.Ok);
        if (got < first.Length || limit == first.Length) return Unterminated(first[..got], limit);

        var rented = ArrayPool<byte>.Shared.Rent(limit);
        try
        {
            var buffer = rented.AsSpan(0, limit);
            first.CopyTo(buffer);
            got = first.Length + ReadRva(rva + (uint)first.Length, buffer[first.Length..]);
            nul = buffer[..got].IndexOf((byte)0);
            if (nul >= 0) return new PeStringRead(Encoding.ASCII.GetString(buffer[..nul]), PeStringStatus.Ok);
            return Unterminated(buffer[..got], limit);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }

        // No NUL: the cap or the container ended (truncated), or the bytes stopped early (missing page).
        static PeStringRead Unterminated(ReadOnlySpan<byte> data, int limit) =>
            data.Length == 0 || data.Length < limit
                ? new PeStringRead(null, PeStringStatus.Unreadable)
                : new PeStringRead(Encoding.ASCII.GetString(data), PeStringStatus.Unterminated);
    }

    /// <summary>Convenience: the string, or null when nothing could be read (an unterminated string is returned truncated).</summary>
    public string? ReadAsciiZOrNull(uint rva, int maxLength) => ReadAsciiZ(rva, maxLength).Value;

    /// <summary>Reads from the source at a raw position (file offset in file layout), for data the loader does not map.</summary>
    public int ReadRaw(long position, Span<byte> destination) => _reader.Read(position, destination);

    internal void Diagnose(string code, string message)
    {
        if (_diagnostics.Count < MaxDiagnostics) _diagnostics.Add(new PeDiagnostic(code, message));
        else if (_diagnostics.Count == MaxDiagnostics) _diagnostics.Add(new PeDiagnostic("diagnostics-capped", $"more than {MaxDiagnostics} diagnostics; the rest are dropped"));
    }
}

internal enum PeStringStatus
{
    Ok,
    /// <summary>No NUL within the cap or the containing section: <see cref="PeStringRead.Value"/> is truncated.</summary>
    Unterminated,
    /// <summary>Nothing readable (outside the image, or the bytes stop at a missing page).</summary>
    Unreadable,
}

internal readonly record struct PeStringRead(string? Value, PeStringStatus Status);
