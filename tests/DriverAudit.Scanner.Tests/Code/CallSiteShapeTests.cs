using DriverAudit.Scanner.Code;
using Iced.Intel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace DriverAudit.Scanner.Tests.Code;

/// <summary>Precise call shapes assembled with Iced: what must be recovered, and what must stay unknown.</summary>
public class CallSiteShapeTests
{
    private const string Alloc = "ExAllocatePoolWithTag", Free = "ExFreePoolWithTag", Pool2 = "ExAllocatePool2";

    private static void CallSlot64(Assembler a, int k) =>
        a.AddInstruction(Instruction.Create(Iced.Intel.Code.Call_rm64, new MemoryOperand(Register.RIP, (long)CodePe.Va(true, CodePe.Slot(true, k)))));

    private static void JmpSlot64(Assembler a, int k) =>
        a.AddInstruction(Instruction.Create(Iced.Intel.Code.Jmp_rm64, new MemoryOperand(Register.RIP, (long)CodePe.Va(true, CodePe.Slot(true, k)))));

    private static void LoadSlot64(Assembler a, Register reg, int k) =>
        a.AddInstruction(Instruction.Create(Iced.Intel.Code.Mov_r64_rm64, reg, new MemoryOperand(Register.RIP, (long)CodePe.Va(true, CodePe.Slot(true, k)))));

    private static void LoadGlobal64(Assembler a, Register reg32) =>
        a.AddInstruction(Instruction.Create(Iced.Intel.Code.Mov_r32_rm32, reg32, new MemoryOperand(Register.RIP, (long)CodePe.Va(true, CodePe.GlobalRva))));

    private static string Describe(CallSite s) => $"{s.Api.Name} {string.Join(",", s.Args)} {s.Shape}";

    [Fact]
    public void X64_direct_call_recovers_32_bit_forms_xor_and_moves_through_registers()
    {
        var facts = CodePe.Facts(true, a =>
        {
            a.push(rbx);
            a.mov(ebx, 0x206B6444);       // 'Ddk ' in a register first
            a.xor(ecx, ecx);              // pool type 0 via xor
            a.mov(edx, 0x40);
            a.mov(r8d, ebx);              // through another register
            a.mov(r9, 0xFFFFFFFF00000001UL);
            CallSlot64(a, 0);
            a.pop(rbx);
            a.ret();
        }, Alloc);
        var site = Assert.Single(facts.CallSites);
        Assert.Equal("ExAllocatePoolWithTag 0x0,0x40,0x206b6444,0xffffffff00000001 Direct", Describe(site));
        Assert.Equal(CodePe.TextRva + 0x1Au, site.SiteRva); // push(1) mov(5) xor(2) mov(5) mov(3) mov r9(10) = 0x1A
    }

    [Fact]
    public void X64_register_reused_for_several_calls_and_the_tag_in_a_callee_saved_register()
    {
        var facts = CodePe.Facts(true, a =>
        {
            a.push(rbx);
            a.push(rsi);
            a.mov(ebx, 0x67655278);
            LoadSlot64(a, rsi, 0);
            for (var n = 1; n <= 3; n++)
            {
                a.mov(ecx, 0x200);
                a.mov(edx, 0x10 * n);
                a.mov(r8d, ebx);
                a.call(rsi);
            }
            a.pop(rsi);
            a.pop(rbx);
            a.ret();
        }, Alloc);
        Assert.Equal(
            ["ExAllocatePoolWithTag 0x200,0x10,0x67655278,unknown ViaRegister",
             "ExAllocatePoolWithTag 0x200,0x20,0x67655278,unknown ViaRegister",
             "ExAllocatePoolWithTag 0x200,0x30,0x67655278,unknown ViaRegister"],
            facts.CallSites.Select(Describe));
    }

    [Fact]
    public void X64_call_clobbers_volatile_registers_and_globals_and_rip_addresses_are_unknown()
    {
        var facts = CodePe.Facts(true, a =>
        {
            var helper = a.CreateLabel();
            a.mov(r8d, 0x74736554);
            a.mov(ecx, 1);
            a.mov(r12d, 0x11);
            a.call(helper);               // clobbers rcx, rdx, r8..r11 (not r12)
            a.mov(edx, r12d);
            CallSlot64(a, 0);             // tag (r8) and type (rcx) unknown after the call
            LoadGlobal64(a, r8d);         // a global variable is not a constant
            a.AddInstruction(Instruction.Create(Iced.Intel.Code.Lea_r64_m, Register.RCX, new MemoryOperand(Register.RIP, (long)CodePe.Va(true, 0x1800)))); // an address, not a constant
            CallSlot64(a, 0);
            a.ret();
            a.Label(ref helper);
            a.ret();
        }, Alloc);
        Assert.Equal(
            ["ExAllocatePoolWithTag unknown,0x11,unknown,unknown Direct",
             "ExAllocatePoolWithTag unknown,unknown,unknown,unknown Direct"], // the first import call clobbered rdx too
            facts.CallSites.Select(Describe));
    }

    [Fact]
    public void X64_branch_target_between_the_constant_and_the_call_makes_it_unknown()
    {
        var facts = CodePe.Facts(true, a =>
        {
            var join = a.CreateLabel();
            var other = a.CreateLabel();
            a.test(eax, eax);
            a.je(other);
            a.mov(r8d, 0x41414141);
            a.jmp(join);
            a.Label(ref other);
            a.mov(r8d, 0x42424242);
            a.Label(ref join);            // two values reach here: neither is provable
            a.mov(edx, 8);
            CallSlot64(a, 0);
            a.ret();
        }, Alloc);
        Assert.Equal(["ExAllocatePoolWithTag unknown,0x8,unknown,unknown Direct"], facts.CallSites.Select(Describe));
    }

    [Fact]
    public void X64_jmp_thunk_called_from_many_places_gives_one_site_per_caller()
    {
        var facts = CodePe.Facts(true, a =>
        {
            var thunk = a.CreateLabel();
            foreach (var tag in new uint[] { 0x31414141, 0x32414141, 0x33414141 })
            {
                a.mov(ecx, 0x40);
                a.xor(edx, edx);
                a.mov(r8d, tag);
                a.call(thunk);
            }
            a.ret();
            a.int3();
            a.Label(ref thunk);
            JmpSlot64(a, 1);
            a.int3();
            JmpSlot64(a, 0);              // an unused thunk: not a call site
        }, Free, Pool2);
        Assert.Equal(
            ["ExAllocatePool2 0x40,0x0,0x31414141,unknown ViaThunk",
             "ExAllocatePool2 0x40,0x0,0x32414141,unknown ViaThunk",
             "ExAllocatePool2 0x40,0x0,0x33414141,unknown ViaThunk"],
            facts.CallSites.Select(Describe));
        var tags = TagIndex.Build(facts);
        Assert.Equal(["AAA1", "AAA2", "AAA3"], tags.Tags.Select(t => t.Tag));
        Assert.All(tags.Tags, t => Assert.Equal(0x40UL, t.PoolFlags));
    }

    [Fact]
    public void X64_tail_call_through_jmp_slot_is_a_site_with_its_arguments()
    {
        var facts = CodePe.Facts(true, a =>
        {
            a.mov(r8d, 0x706C6548);
            a.mov(rdx, rcx);
            a.mov(ecx, 1);
            JmpSlot64(a, 0);
        }, Alloc);
        Assert.Equal(["ExAllocatePoolWithTag 0x1,unknown,0x706c6548,unknown TailCall"], facts.CallSites.Select(Describe));
    }

    [Fact]
    public void X64_stack_slot_survives_calls_unless_the_frame_escapes()
    {
        void Body(Assembler a, bool escape)
        {
            a.sub(rsp, 0x38);
            a.mov(__dword_ptr[rsp + 0x2c], 0x67655278);
            if (escape) a.lea(rcx, __[rsp + 0x2c]); // the slot's address is handed out
            CallSlot64(a, 1);                        // some other import
            a.mov(r8d, __dword_ptr[rsp + 0x2c]);
            a.mov(ecx, 0x200);
            CallSlot64(a, 0);
            a.add(rsp, 0x38);
            a.ret();
        }
        // A callee with a known signature (2 arguments) owns only its 32-byte home space.
        var clean = CodePe.Facts(true, a => Body(a, false), Alloc, Free);
        Assert.Equal(0x67655278UL, clean.CallSitesOf(Alloc).Single().Args[2].Value);
        var escaped = CodePe.Facts(true, a => Body(a, true), Alloc, Free);
        Assert.False(escaped.CallSitesOf(Alloc).Single().Args[2].IsKnown);
        // An unknown callee may take stack arguments, which it owns: a slot stored via rsp since the last call may be one.
        var unknownCallee = CodePe.Facts(true, a => Body(a, false), Alloc, "KeSomethingWithManyArgs");
        Assert.False(unknownCallee.CallSitesOf(Alloc).Single().Args[2].IsKnown);
    }

    [Fact]
    public void X86_stdcall_pushes_are_args_in_order_and_push_reg_after_mov_imm()
    {
        var facts = CodePe.Facts(false, a =>
        {
            a.mov(eax, 0x74736554);
            a.push(eax);                  // arg2: tag through a register
            a.push(0x100);                // arg1
            a.push(0x200);                // arg0
            a.call(__dword_ptr[(uint)CodePe.Va(false, CodePe.Slot(false, 0))]);
            a.push(0x74736554);           // arg1 of ExFreePoolWithTag
            a.push(eax);                  // arg0: the returned pointer
            a.call(__dword_ptr[(uint)CodePe.Va(false, CodePe.Slot(false, 1))]);
            a.ret();
        }, Alloc, Free);
        Assert.Equal(
            ["ExAllocatePoolWithTag 0x200,0x100,0x74736554,unknown Direct",
             "ExFreePoolWithTag unknown,0x74736554,unknown,unknown Direct"],
            facts.CallSites.Select(Describe));
    }

    [Fact]
    public void X86_pool2_flags_span_two_dwords_and_register_loaded_slot()
    {
        var facts = CodePe.Facts(false, a =>
        {
            a.push(ebx);
            a.mov(ebx, __dword_ptr[(uint)CodePe.Va(false, CodePe.Slot(false, 0))]);
            a.push(0x326F6F50);           // tag
            a.push(0x68);                 // size
            a.push(0);                    // flags high
            a.push(0x42);                 // flags low
            a.call(ebx);
            a.mov(eax, __dword_ptr[(uint)CodePe.Va(false, CodePe.GlobalRva)]);
            a.push(eax);                  // a global: unknown
            a.push(0x68);
            a.push(0);
            a.push(0x40);
            a.call(ebx);                  // ebx still holds the slot (callee-saved), stdcall popped 16 bytes
            a.pop(ebx);
            a.ret();
        }, Pool2);
        Assert.Equal(
            ["ExAllocatePool2 0x42,0x68,0x326f6f50,unknown ViaRegister",
             "ExAllocatePool2 0x40,0x68,unknown,unknown ViaRegister"],
            facts.CallSites.Select(Describe));
    }

    [Fact]
    public void X86_unknown_callee_stack_effect_makes_earlier_pushes_unusable()
    {
        var facts = CodePe.Facts(false, a =>
        {
            var helper = a.CreateLabel();
            a.push(0x41414141);
            a.push(0x10);
            a.push(0);
            a.call(helper);               // cdecl or stdcall? unknown: the pushes may be gone
            a.call(__dword_ptr[(uint)CodePe.Va(false, CodePe.Slot(false, 0))]);
            a.ret();
            a.Label(ref helper);
            a.ret(12);
        }, Alloc);
        Assert.Equal(["ExAllocatePoolWithTag unknown,unknown,unknown,unknown Direct"], facts.CallSites.Select(Describe));
    }

    [Fact]
    public void Bytes_that_only_look_like_a_slot_reference_inside_another_instruction_are_not_sites()
    {
        // mov rax, imm64 whose immediate contains FF 15 <disp32>: not a call.
        var facts = CodePe.Facts(true, a =>
        {
            a.nop();
            a.mov(rax, 0x0000_0000_15FF_0000UL);
            a.ret();
        }, Alloc);
        Assert.Empty(facts.CallSites);
    }

    [Fact]
    public void Code_facts_decode_nothing_until_asked()
    {
        var facts = CodePe.Facts(true, a => { a.mov(r8d, 1); CallSlot64(a, 0); a.wrmsr(); a.ret(); }, Alloc);
        _ = facts.Image.Imports;
        _ = facts.Image.Sections;
        Assert.Equal(0, facts.InstructionsDecoded);
        Assert.Single(facts.CallSites);
        var afterCalls = facts.InstructionsDecoded;
        Assert.True(afterCalls > 0);
        // The call site's function is not in .pdata (none here): the shared function-bounded pass found it, and
        // the instruction facts come from that same pass, decoded once.
        Assert.Equal("wrmsr", Assert.Single(facts.Instructions).Mnemonic);
        var afterAll = facts.InstructionsDecoded;
        Assert.True(afterAll >= afterCalls);
        _ = facts.Instructions;
        _ = facts.References;
        Assert.Equal(afterAll, facts.InstructionsDecoded);
    }
}
