# Copyright (c) mmseg-excel contributors. All rights reserved.
