using System.Buffers.Binary;
using System.Text;

namespace DriverAudit.Scanner.Tests.TestSupport.Dumps;

/// <summary>One section of a <see cref="MiniPe"/>: name, RVA and raw bytes (virtual size = raw size).</summary>
public sealed record MiniSection(string Name, uint Rva, byte[] Data, uint Characteristics = MiniSection.Code)
{
    public const uint Code = 0x60000020, WritableData = 0xC0000040, ReadOnlyData = 0x40000040, DiscardableCode = 0x62000020;
}

/// <summary>
/// Builds a minimal but well-formed PE file (file layout: 0x200 file alignment, 0x1000 section alignment).
/// Enough for the dump writer to map and for the reader to find TimeDateStamp and CheckSum; the richer
/// synthetic PE builder from the PE work replaces it where imports/exports matter.
/// </summary>
public static class MiniPe
{
    private const int LfaNew = 0x80;
    private const uint FileAlignment = 0x200;
    private const uint SectionAlignment = 0x1000;
    private const uint SizeOfHeaders = 0x400;

    public static byte[] Build(bool is64, uint timeDateStamp, uint checkSum, params MiniSection[] sections) =>
        Build(is64, imageBase: 0, timeDateStamp, checkSum, sections);

    /// <param name="imageBase">The preferred base: x86 code holds absolute addresses against it.</param>
    public static byte[] Build(bool is64, ulong imageBase, uint timeDateStamp, uint checkSum, MiniSection[] sections)
    {
        var optionalSize = is64 ? 0xF0 : 0xE0;
        uint sizeOfImage = SectionAlignment;
        foreach (var s in sections) sizeOfImage = Math.Max(sizeOfImage, Align(s.Rva + (uint)s.Data.Length, SectionAlignment));
        var rawPointer = SizeOfHeaders;
        var fileSize = SizeOfHeaders + sections.Sum(s => Align((uint)s.Data.Length, FileAlignment));
        var pe = new byte[fileSize];
        var span = pe.AsSpan();
        "MZ"u8.CopyTo(span);
        BinaryPrimitives.WriteUInt32LittleEndian(span[0x3C..], LfaNew);
        "PE\0\0"u8.CopyTo(span[LfaNew..]);
        var fh = LfaNew + 4;
        BinaryPrimitives.WriteUInt16LittleEndian(span[fh..], is64 ? (ushort)0x8664 : (ushort)0x14C);
        BinaryPrimitives.WriteUInt16LittleEndian(span[(fh + 2)..], (ushort)sections.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(span[(fh + 4)..], timeDateStamp);
        BinaryPrimitives.WriteUInt16LittleEndian(span[(fh + 16)..], (ushort)optionalSize);
        BinaryPrimitives.WriteUInt16LittleEndian(span[(fh + 18)..], is64 ? (ushort)0x22 : (ushort)0x102);
        var oh = fh + 20;
        BinaryPrimitives.WriteUInt16LittleEndian(span[oh..], is64 ? (ushort)0x20B : (ushort)0x10B);
        if (is64) BinaryPrimitives.WriteUInt64LittleEndian(span[(oh + 24)..], imageBase);
        else BinaryPrimitives.WriteUInt32LittleEndian(span[(oh + 28)..], (uint)imageBase);
        BinaryPrimitives.WriteUInt32LittleEndian(span[(oh + 32)..], SectionAlignment);
        BinaryPrimitives.WriteUInt32LittleEndian(span[(oh + 36)..], FileAlignment);
        BinaryPrimitives.WriteUInt32LittleEndian(span[(oh + 56)..], sizeOfImage);
        BinaryPrimitives.WriteUInt32LittleEndian(span[(oh + 60)..], SizeOfHeaders);
        BinaryPrimitives.WriteUInt32LittleEndian(span[(oh + 64)..], checkSum);
        BinaryPrimitives.WriteUInt16LittleEndian(span[(oh + 68)..], 1); // native subsystem
        BinaryPrimitives.WriteUInt32LittleEndian(span[(oh + (is64 ? 108 : 92))..], 16);
        var sh = oh + optionalSize;
        foreach (var s in sections)
        {
            Encoding.ASCII.GetBytes(s.Name.PadRight(8, '\0')[..8]).CopyTo(span[sh..]);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(sh + 8)..], (uint)s.Data.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(sh + 12)..], s.Rva);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(sh + 16)..], Align((uint)s.Data.Length, FileAlignment));
            BinaryPrimitives.WriteUInt32LittleEndian(span[(sh + 20)..], rawPointer);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(sh + 36)..], s.Characteristics);
            s.Data.CopyTo(span[(int)rawPointer..]);
            rawPointer += Align((uint)s.Data.Length, FileAlignment);
            sh += 40;
        }
        return pe;
    }

    /// <summary>Deterministic, non-zero, position-dependent filler so misplaced pages are caught.</summary>
    public static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        for (var i = 0; i < length; i++) b[i] = (byte)((i * 31 + seed * 17 + (i >> 8)) % 251 + 1);
        return b;
    }

    private static uint Align(uint v, uint a) => (v + a - 1) / a * a;
}

/// <summary>Maps a PE file (file layout) into loaded layout the way the loader does: headers, then each section at its RVA.</summary>
public static class PeLayout
{
    public static byte[] ToLoaded(byte[] file)
    {
        var span = file.AsSpan();
        var lfanew = (int)BinaryPrimitives.ReadUInt32LittleEndian(span[0x3C..]);
        var sections = BinaryPrimitives.ReadUInt16LittleEndian(span[(lfanew + 6)..]);
        var optionalSize = BinaryPrimitives.ReadUInt16LittleEndian(span[(lfanew + 20)..]);
        var oh = lfanew + 24;
        var sizeOfImage = BinaryPrimitives.ReadUInt32LittleEndian(span[(oh + 56)..]);
        var sizeOfHeaders = BinaryPrimitives.ReadUInt32LittleEndian(span[(oh + 60)..]);
        var image = new byte[sizeOfImage];
        span[..(int)Math.Min(sizeOfHeaders, (uint)file.Length)].CopyTo(image);
        var sh = oh + optionalSize;
        for (var i = 0; i < sections; i++, sh += 40)
        {
            var virtualSize = BinaryPrimitives.ReadUInt32LittleEndian(span[(sh + 8)..]);
            var rva = BinaryPrimitives.ReadUInt32LittleEndian(span[(sh + 12)..]);
            var rawSize = BinaryPrimitives.ReadUInt32LittleEndian(span[(sh + 16)..]);
            var rawPointer = BinaryPrimitives.ReadUInt32LittleEndian(span[(sh + 20)..]);
            var n = (int)Math.Min(virtualSize == 0 ? rawSize : Math.Min(virtualSize, rawSize), sizeOfImage - rva);
            span.Slice((int)rawPointer, n).CopyTo(image.AsSpan((int)rva));
        }
        return image;
    }
}
