using System.Buffers.Binary;
using System.Text;
using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using Iced.Intel;

namespace DriverAudit.Scanner.Tests.Code;

/// <summary>
/// A PE image around hand-assembled code: .text (r-x) at 0x1000 and .data (rw-) at 0x2000 holding the IAT slots
/// and a global. Imports are handed to the analysis directly (as a dump module's resolved IAT would be).
/// </summary>
public static class CodePe
{
    public const uint TextRva = 0x1000, DataRva = 0x2000;
    public const ulong Base64 = 0x140000000, Base32 = 0x400000;
    /// <summary>Slot RVAs: slot k is at DataRva + 8k (x64) or DataRva + 4k (x86).</summary>
    public static uint Slot(bool is64, int k) => DataRva + (uint)(k * (is64 ? 8 : 4));
    /// <summary>A writable global variable after the slots.</summary>
    public const uint GlobalRva = DataRva + 0x100;

    public static ulong Va(bool is64, uint rva) => (is64 ? Base64 : Base32) + rva;

    /// <summary>Assembles <paramref name="build"/> at the .text address and returns the machine code.</summary>
    public static byte[] Assemble(bool is64, Action<Assembler> build)
    {
        var a = new Assembler(is64 ? 64 : 32);
        build(a);
        var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), Va(is64, TextRva));
        return stream.ToArray();
    }

    public static PeImage Image(bool is64, byte[] text)
    {
        var sections = new (string Name, uint Rva, byte[] Data, uint Flags)[]
        {
            (".text", TextRva, text, 0x60000020),
            (".data", DataRva, new byte[0x200], 0xC0000040),
        };
        var bytes = Build(is64, is64 ? Base64 : Base32, sections);
        var open = PeImage.TryOpen(new MemoryImageSource(bytes, ImageLayout.File, new ImageOrigin("synthetic.sys")));
        return open.Image ?? throw new InvalidOperationException(open.Reason);
    }

    public static CodeImport Import(bool is64, int k, string name) => new("ntoskrnl.exe", name, null, Slot(is64, k));

    public static CodeFacts Facts(bool is64, Action<Assembler> build, params string[] imports) =>
        new(Image(is64, Assemble(is64, build)), imports.Select((n, k) => Import(is64, k, n)).ToList());

    private static byte[] Build(bool is64, ulong imageBase, (string Name, uint Rva, byte[] Data, uint Flags)[] sections)
    {
        const int LfaNew = 0x80;
        const uint FileAlignment = 0x200, SectionAlignment = 0x1000, SizeOfHeaders = 0x400;
        var optionalSize = is64 ? 0xF0 : 0xE0;
        uint sizeOfImage = SectionAlignment;
        foreach (var s in sections) sizeOfImage = Math.Max(sizeOfImage, Align(s.Rva + (uint)s.Data.Length, SectionAlignment));
        var fileSize = SizeOfHeaders + sections.Sum(s => Align((uint)s.Data.Length, FileAlignment));
        var pe = new byte[fileSize];
        var span = pe.AsSpan();
        "MZ"u8.CopyTo(span);
        BinaryPrimitives.WriteUInt32LittleEndian(span[0x3C..], LfaNew);
        "PE\0\0"u8.CopyTo(span[LfaNew..]);
        var fh = LfaNew + 4;
        BinaryPrimitives.WriteUInt16LittleEndian(span[fh..], is64 ? (ushort)0x8664 : (ushort)0x14C);
        BinaryPrimitives.WriteUInt16LittleEndian(span[(fh + 2)..], (ushort)sections.Length);
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
        BinaryPrimitives.WriteUInt16LittleEndian(span[(oh + 68)..], 1);
        BinaryPrimitives.WriteUInt32LittleEndian(span[(oh + (is64 ? 108 : 92))..], 16);
        var sh = oh + optionalSize;
        var raw = SizeOfHeaders;
        foreach (var s in sections)
        {
            Encoding.ASCII.GetBytes(s.Name.PadRight(8, '\0')[..8]).CopyTo(span[sh..]);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(sh + 8)..], (uint)s.Data.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(sh + 12)..], s.Rva);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(sh + 16)..], Align((uint)s.Data.Length, FileAlignment));
            BinaryPrimitives.WriteUInt32LittleEndian(span[(sh + 20)..], raw);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(sh + 36)..], s.Flags);
            s.Data.CopyTo(span[(int)raw..]);
            raw += Align((uint)s.Data.Length, FileAlignment);
            sh += 40;
        }
        return pe;
    }

    private static uint Align(uint v, uint a) => (v + a - 1) / a * a;
}
