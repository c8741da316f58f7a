using DriverAudit.Rules.Facts;
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

    internal static PeImage Image(bool is64, byte[] text)
    {
        var bytes = MiniPe.Build(is64, is64 ? Base64 : Base32, timeDateStamp: 0, checkSum: 0,
        [
            new MiniSection(".text", TextRva, text, MiniSection.Code),
            new MiniSection(".data", DataRva, new byte[0x200], MiniSection.WritableData),
        ]);
        var open = PeImage.TryOpen(new MemoryImageSource(bytes, ImageLayout.File, new ImageOrigin("synthetic.sys")));
        return open.Image ?? throw new InvalidOperationException(open.Reason);
    }

    internal static ImportFact Import(bool is64, int k, string name) => new("ntoskrnl.exe", name, null, false, Slot(is64, k));

    internal static CodeFacts Facts(bool is64, Action<Assembler> build, params string[] imports) =>
        new(Image(is64, Assemble(is64, build)), imports.Select((n, k) => Import(is64, k, n)).ToList());
}
