"""The class prompts packed (02_viclip `PackedPrompts`) give M2-CLIP's classifier the same training step as the padded batch.

The notebook 11_classifier checks MSTA, LoRA, AdaptFormer and full fine-tuning; M2-CLIP's classifier (11c_m2clip)
builds on 11_classifier, so it is checked here.
"""
import torch
import torch.nn.functional as F

from msta_core.peft import apply_peft
from msta_core.m2clip import M2CLIPClassifier
from msta_core.viclip import ViCLIP, get_config

NAMES = ['archery', 'juggling balls', 'riding a bike', 'golf', 'apply eye makeup', 'yo yo',
         'doing a back flip on a trampoline']


def test_m2clip_step_packed_equals_padded():
    torch.manual_seed(0)
    m = apply_peft(ViCLIP(get_config('tiny')).double(), 'm2clip', dims=8, m2clip_text_blocks=2)
    clf = M2CLIPClassifier(m, NAMES).train()
    with torch.no_grad():                                   # off the initialisation (zero up-projections)
        for p in clf.parameters():
            if p.requires_grad: p.add_(0.05 * torch.randn_like(p))
    batch = {'video': torch.randn(3, 4, 3, 32, 32, dtype=torch.double), 'label': torch.tensor([0, 3, 6])}
    assert clf.text_start() == 0 and len(clf.packing().groups) >= 3      # several suffix lengths
    out = {}
    for packed in (True, False):
        clf.packed = packed
        clf.zero_grad(set_to_none=True)
        torch.manual_seed(1)                                # the same MLM masks and dropout: the text path draws nothing
        loss = clf(batch)['loss']
        loss.backward()
        out[packed] = loss.detach(), {n: p.grad.clone() for n, p in clf.named_parameters() if p.grad is not None}
    (l_pk, g_pk), (l_pad, g_pad) = out[True], out[False]
    torch.testing.assert_close(l_pk, l_pad)                 # float64, default tolerances (see 11_classifier)
    assert g_pk.keys() == g_pad.keys() and any('.text.' in n for n in g_pad)
    for n in g_pad: torch.testing.assert_close(g_pk[n], g_pad[n], msg=lambda s: f'{n}: {s}')
    with torch.no_grad():                                   # and the class features of both layouts
        clf.packed = True; t_pk = clf.class_features()
        clf.packed = False; t_pad = clf.class_features()
    torch.testing.assert_close(t_pk, t_pad)
    assert not torch.allclose(F.normalize(t_pk, dim=-1)[0], F.normalize(t_pk, dim=-1)[1])
