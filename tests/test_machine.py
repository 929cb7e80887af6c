"""permakey_tf.machine: the labels that name machines in report folders."""

from permakey_tf import machine


def test_machine_label_names_vendor_and_widest_instruction_set():
    epyc = "AMD EPYC 9R14 96-Core Processor"
    assert machine.machine_label(epyc, {"avx2", "fma"}) == "amd-epyc-avx2"
    assert machine.machine_label(epyc, {"avx2", "avx512f", "avx512_bf16"}) == "amd-epyc-avx512"
    assert machine.machine_label("Intel(R) Xeon(R) Platinum 8488C", {"avx512f", "amx_bf16"}) == "intel-xeon-amx"
    assert machine.machine_label("Some CPU", set()) == "cpu-base"


def test_this_machine_is_described():
    assert machine.cpu_model() and isinstance(machine.cpu_flags(), set)
    assert machine.machine_label().count("-") >= 1
